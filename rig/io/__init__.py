"""Safe loading of untrusted files, atomic writes, video I/O."""
