"""The lock library shared by the MDS and every OSS (Lustre's ldlm).

modes, inodebits and extent hold the conflict rules; resource is the pure lock
state machine; core wraps it with the rest of a lock server's state (exports,
callback timers, glimpse collection), still sans-I/O; lockd is the server's
thin shell around core (threads, the clock, callback streams) and service its
gRPC front; request is the client side (enqueue, callbacks) over held, the
client's pure table of held locks. This package never imports the servers or
the client that use it.
"""
