"""The object storage server: objects on a local directory (osd), object
semantics over them (ofd), the Oss gRPC service and the `lustrepy-oss` daemon."""
