"""Where tables live: a local path, or an object in a bucket (``s3://``, ``gs://``, ``az://``)."""
