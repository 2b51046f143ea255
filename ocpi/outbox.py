"""The push outbox: network changes become OutboxMessage rows in the same transaction."""
