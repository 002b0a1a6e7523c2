"""Tables: file formats, reading inputs in batches, checking them against a spec, mapping answers
to typed columns, writing outputs atomically."""
