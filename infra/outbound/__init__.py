"""Outbound alerts to emergency command and other systems (README "Outbound alerts"): events of
the store, chosen by subscriptions, delivered as signed JSON webhooks or CAP 1.2, tracked."""
