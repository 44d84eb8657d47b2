"""Measuring instruments: networks and detectors that read rig parameters back out of images.

``encoder``: the default world's face-parameter encoder (a CNN trained on world renders;
``encoder_train`` trains it). Used by the labeler of ``rig label``, by ``rig eval generator`` /
``rig eval rignet`` and by the inversion's losses; ``dlib_reader`` is the independent one
(dlib's 68 landmarks and 128-D descriptor, head angles and jaw from rig's tracker fit to them)
that judges what the encoder was trained with; ``dlib_reader.calibrate_on_world`` measures its floor.
"""
