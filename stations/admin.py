"""Admin for the charge network. PLACEHOLDER: being written."""
