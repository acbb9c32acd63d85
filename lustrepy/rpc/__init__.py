"""Wire protocol: .proto files, generated modules, conversions, channels and the trio bridge.

Imports only lustrepy.common; never a server or client package.
"""
