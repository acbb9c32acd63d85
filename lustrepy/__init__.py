"""lustrepy: a Lustre-style cluster file system (MDS, OSS, FUSE client, lfsctl)."""

__version__ = "0.1.0"
