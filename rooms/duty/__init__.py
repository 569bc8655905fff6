"""Who answers a request: the on-duty roster, escalation and reminders, Web Push subscriptions."""
