"""Accounts: users at a node of the region tree, roles, jurisdiction scope, login."""
