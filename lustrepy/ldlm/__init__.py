"""The lock library shared by the MDS and every OSS (Lustre's ldlm).

modes, inodebits and extent hold the conflict rules; resource is the pure lock
state machine; lockd is the server side (callback streams, timeouts,
eviction); request is the client side (enqueue, LRU, callbacks). This package
never imports the servers or the client that use it.
"""
