"""Put a user's own face into the rig: photo -> aligned crop -> W+ (``rig align``, ``rig invert``).

* ``align``: dlib's 68 landmarks -> the FFHQ-style crop the generator's training set used, the
  transform kept so results can be pasted back into the photo;
* ``losses``: image similarity (PSNR, multi-scale SSIM) and the face-parameter encoder's features
  and landmarks as differentiable terms;
* ``inverter`` / ``inverter_train``: an image -> W+ encoder trained for one generator
  (``rig train inverter``), the one-pass starting point;
* ``optimize``: W+ optimisation from there; ``tune``: pivotal tuning of a copy of ``G``;
* ``pipeline``: ``rig invert`` (photo or crop -> face file); ``evaluate``: ``rig eval invert``.
"""
