"""lfsctl: the admin tool and the local cluster launcher, one module per command group.

Reaches servers over RPC only (lustrepy.rpc); never imports lustrepy.mds,
lustrepy.oss or lustrepy.client. Stops processes by recorded pid, never by name.
"""
