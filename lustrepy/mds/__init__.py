"""The metadata server: namespace storage (SQLite), POSIX rules, intents, reint,
layout allocation, the proxy to the OSTs, recovery and the consistency checker.

Storage and POSIX rules live in schema.py, store.py, namespace.py and the
modules it delegates to (setattr, rename, xattr, resources; the permission
rules are lustrepy.common.perm, shared with the client); they know
nothing of gRPC, protobuf or locks. This package init imports nothing so that
importing one module never drags in the others.
"""
