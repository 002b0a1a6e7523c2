"""Jobs from file to file: batches, the checkpoint that makes them resumable, progress, summary."""
