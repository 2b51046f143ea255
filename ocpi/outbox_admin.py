"""Admin for the push outbox. PLACEHOLDER: being written."""
