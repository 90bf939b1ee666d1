"""I/O shared by every wing: the one reader of user inputs, fsspec files, atomic writes, temporary names."""
