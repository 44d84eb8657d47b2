"""StyleGAN2 training on CPU: config presets, losses, EMA, resumable snapshots and the loop (``Trainer``)."""
