"""Small helpers shared by the chapters: setup, plotting style, data loaders."""
