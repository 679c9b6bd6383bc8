"""Alert rules, the outbox dispatcher and the notification sinks."""
