"""Images: references, registry client, content store, layer unpack, signatures and policy."""
