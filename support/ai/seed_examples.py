"""A few labelled requests the agent compares new tickets with until approved training
examples (from resolved, well-rated tickets) take over."""

SEED_EXAMPLES = [
    ("I can't log in, it says my password is wrong", "account", False),
    ("How do I change the email address on my account?", "account", False),
    ("I lost my phone and can't get the two-factor code", "account", False),
    ("How do I invite my colleague to our workspace?", "account", False),
    ("Can we set up single sign-on with our identity provider?", "account", False),
    ("Where can I download my invoices?", "billing", False),
    ("My card payment failed, how do I update the card?", "billing", False),
    ("How are seats billed when I add a member mid-month?", "billing", False),
    ("I was charged twice this month and want the money back", "billing", True),
    ("Please refund my yearly subscription", "billing", True),
    ("Can I change the billing currency to euros?", "billing", False),
    ("I want to cancel my subscription", "cancellation", False),
    ("How do I downgrade from Business to Starter?", "cancellation", False),
    ("Please delete my account and all my data", "cancellation", True),
    ("The CSV export times out and the file is empty", "bug", False),
    ("The app crashes when I open a project on Android", "bug", False),
    ("Tasks are not syncing between the web and the mobile app", "bug", False),
    ("I get an error 500 when I save a task", "bug", False),
    ("Notifications stopped arriving by email", "bug", False),
    ("Could you add a Gantt chart view?", "feature", False),
    ("It would be great to have dark mode on mobile", "feature", False),
    ("Please add an integration with Microsoft Teams", "feature", False),
    ("How do I connect Slack to my projects?", "general", False),
    ("What is the API rate limit?", "general", False),
    ("How do I create a recurring task?", "general", False),
    ("Where is my data stored?", "general", False),
    ("I think someone hacked my account, there are logins I don't recognise", "account", True),
    ("I want to speak to a real person, not a bot", "general", True),
    ("Your service has been terrible, I want to file a complaint", "general", True),
    ("Our lawyer needs a copy of the data processing agreement", "general", True),
]


def seed_rows() -> list[dict]:
    return [
        {"id": f"seed-{i}", "text": text, "ticket_type": type_, "needs_human": human}
        for i, (text, type_, human) in enumerate(SEED_EXAMPLES)
    ]
