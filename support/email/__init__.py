"""The email channel: parsing and safety of inbound mail, threading, the doors (SMTP,
IMAP, provider webhooks), and outbound headers and formatting."""
