"""Admin for partners. PLACEHOLDER: being written."""
