"""The client: metadata client (mdc), object clients (osc), striping (lov), and the FUSE mount.

Imports ldlm, rpc and common; never a server package.
"""
