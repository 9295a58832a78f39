"""Worker heartbeats: each loop of each `governance worker` says when it last ran and how."""
