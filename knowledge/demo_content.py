"""Demo help center of Flowboard, a fictional project-management SaaS (loaded by the demo data)."""

CATEGORIES = [
    # (slug, name, icon, description, parent_slug or None, display_order)
    (
        "getting-started",
        "Getting started",
        "🚀",
        "Set up your workspace and invite your team.",
        None,
        1,
    ),
    (
        "getting-started-workspace",
        "Your workspace",
        "🏠",
        "Create a workspace, invite people and choose the right roles.",
        "getting-started",
        1,
    ),
    (
        "getting-started-projects",
        "Projects & tasks",
        "✅",
        "Templates, recurring tasks, attachments and the features in beta.",
        "getting-started",
        2,
    ),
    (
        "account-security",
        "Account & security",
        "🔐",
        "Sign in, change your password or email and keep your account safe.",
        None,
        2,
    ),
    (
        "account-security-2fa-sso",
        "Two-factor & single sign-on",
        "🛡️",
        "Two-factor authentication, lost devices and SAML single sign-on.",
        "account-security",
        1,
    ),
    (
        "billing-plans",
        "Billing & plans",
        "💳",
        "Plans, seats, invoices, payments and refunds.",
        None,
        3,
    ),
    (
        "billing-plans-subscription",
        "Your subscription",
        "📦",
        "Upgrade, downgrade, change billing period or cancel.",
        "billing-plans",
        1,
    ),
    (
        "billing-plans-payments",
        "Payments & invoices",
        "🧾",
        "Cards, invoices, receipts, taxes and charges you don't recognise.",
        "billing-plans",
        2,
    ),
    (
        "integrations-api",
        "Integrations & API",
        "🔌",
        "Connect Slack, GitHub and Google Calendar, and manage integrations.",
        None,
        4,
    ),
    (
        "integrations-api-developers",
        "REST API & webhooks",
        "🛠️",
        "Tokens, rate limits, errors and webhooks for developers.",
        "integrations-api",
        1,
    ),
    (
        "troubleshooting",
        "Troubleshooting",
        "🧰",
        "Fix sign-in problems, missing notifications and outages.",
        None,
        5,
    ),
    (
        "troubleshooting-mobile",
        "Mobile apps",
        "📱",
        "Install, sync and fix the Flowboard apps for iOS and Android.",
        "troubleshooting",
        1,
    ),
    (
        "data-privacy",
        "Data & privacy",
        "🗄️",
        "Where your data lives, security, GDPR requests and account deletion.",
        None,
        6,
    ),
    (
        "data-privacy-import-export",
        "Import & export",
        "🔄",
        "Bring data in from CSV or Trello and export it back out.",
        "data-privacy",
        1,
    ),
]

ARTICLES = [
    # ------------------------------------------------------------------ getting-started
    {
        "title": "Take a five-minute tour of Flowboard",
        "category": "getting-started",
        "summary": "A quick overview of workspaces, projects, tasks and views in Flowboard.",
        "beta": False,
        "body": """\
## How Flowboard is organised
Everything in Flowboard lives inside a **workspace** — usually one per company. A workspace
contains:

- **Projects** — a board, list or timeline of work, for example "Website redesign".
- **Sections** — columns on a board (for example *To do*, *In progress*, *Done*).
- **Tasks** — the individual pieces of work, each with an assignee, due date, labels,
  comments, subtasks and attachments.

## Switching views
Every project can be displayed in four views. Use the view switcher at the top of the project:

1. **Board** — drag cards between columns.
2. **List** — a sortable table, good for bulk editing.
3. **Timeline** — a Gantt-style chart for tasks with start and due dates.
4. **Calendar** — tasks placed on their due dates.

Views are saved per person, so changing yours does not change what your teammates see.

## Finding your way around
- **My tasks** in the left sidebar lists everything assigned to you across all projects.
- **Inbox** collects mentions, assignments and comments on tasks you follow.
- Press `Ctrl + K` (`Cmd + K` on Mac) to open the command palette and jump to any project,
  task or setting.

## Next steps
Invite your teammates from **Settings → Members → Invite**, then create your first project
from a template so you don't start from a blank board.
""",
    },
    {
        "title": "Keyboard shortcuts",
        "category": "getting-started",
        "summary": "The keyboard shortcuts available in the Flowboard web and desktop app.",
        "beta": False,
        "body": """\
## Show all shortcuts
Press `?` anywhere in Flowboard (outside a text field) to open the full shortcut list. On
Windows and Linux use `Ctrl` wherever this article says `Cmd`.

## Most used shortcuts
| Shortcut | Action |
| --- | --- |
| `C` | Create a task in the current project |
| `Cmd + K` | Open the command palette |
| `/` | Focus the search bar |
| `G` then `P` | Go to Projects |
| `G` then `M` | Go to My tasks |
| `G` then `I` | Go to Inbox |
| `E` | Edit the selected task title |
| `M` | Assign the selected task to me |
| `D` | Set a due date |
| `L` | Add a label |
| `Cmd + Enter` | Save a comment or close the task editor |
| `Esc` | Close the open panel |
| `J` / `K` | Move down / up in a list |

## Shortcuts not working?
- Make sure the cursor is not inside a text field — single-letter shortcuts are ignored while
  you type.
- Browser extensions that remap keys (vim-style navigation, translators) can capture the
  keystrokes first. Try a private window with extensions disabled.
- Shortcuts can be turned off in **Settings → Appearance → Keyboard shortcuts**. Check that
  the toggle is on.
- Non-US keyboard layouts: `?` and `/` follow the character, not the key position, so use
  the key that types that character on your layout.
""",
    },
    {
        "title": "Turn on dark mode",
        "category": "getting-started",
        "summary": "How to switch between light, dark and system themes on web and mobile.",
        "beta": False,
        "body": """\
## On the web and desktop app
1. Click your avatar in the bottom-left corner and choose **Settings**.
2. Open **Settings → Appearance**.
3. Under **Theme**, choose **Light**, **Dark** or **System**.

**System** follows your operating system and switches automatically when your computer
changes between light and dark (for example at sunset). The change applies instantly; there
is no need to reload.

## On iOS and Android
1. Tap your avatar in the top-left corner.
2. Tap **Appearance**.
3. Choose **Light**, **Dark** or **Use device setting**.

## Good to know
- The theme is saved **per device**, not per account. Choosing dark mode on your laptop does
  not change your phone, and teammates are not affected.
- Workspace Owners cannot force a theme for everybody.
- **High contrast** and **Reduce motion** options are on the same Appearance page and work
  with both themes.
- If the theme flips back after reloading, your browser may be blocking local storage for
  Flowboard. Allow site data for Flowboard in your browser's privacy settings and choose the
  theme again.
""",
    },
    # ------------------------------------------------------------------ workspace
    {
        "title": "Create your workspace and first project",
        "category": "getting-started-workspace",
        "summary": "How to sign up, name your workspace, pick a data region and create a project.",
        "beta": False,
        "body": """\
## Create the workspace
1. Sign up with your work email or with Google, then confirm your address from the email
   we send you (the link is valid for 24 hours).
2. Enter a **workspace name** — usually your company or team name. You can rename it later
   in **Settings → General**.
3. Choose a **data region**: **EU** or **US**. This is where your projects and files are
   stored and it cannot be changed later on Free, Starter or Business plans.
4. Skip or fill in the short questionnaire about your team; it only pre-selects templates.

New workspaces start on the Free plan. You can start a 14-day Business trial at any time
from **Settings → Billing**.

## Create your first project
1. Click **+ New project** in the left sidebar.
2. Pick a template (for example *Sprint planning* or *Client onboarding*) or **Blank project**.
3. Give the project a name, choose who can see it (**Workspace** or **Private**), then
   click **Create**.

## Add your first tasks
Press `C` or click **+ Add task** at the bottom of any column. Type a title, press `Enter`,
and keep typing to add the next task. Open a task to add an assignee, a due date, a
description and attachments.
""",
    },
    {
        "title": "Invite teammates to your workspace",
        "category": "getting-started-workspace",
        "summary": "How to invite people by email and pick a role: Owner, Admin, Member or Guest.",
        "beta": False,
        "body": """\
## Before you start
Only **Owners** and **Admins** can invite people. On paid plans every new Owner, Admin or
Member adds a paid seat; Guests are free. The Free plan allows up to 5 members.

## Steps
1. Go to **Settings → Members → Invite**.
2. Enter one or more email addresses (up to 50 at a time, separated by commas or new lines).
3. Choose a role for the invitees.
4. Optionally pick the projects they should be added to.
5. Click **Send invitations**.

Invitations are valid for **7 days**. Pending invitations appear under **Settings → Members
→ Pending**, where you can resend or revoke them. If someone sees "Invitation expired",
resend it from that list.

## Roles
| Role | What they can do |
| --- | --- |
| **Owner** | Everything, including billing, SSO, deleting the workspace |
| **Admin** | Manage members, projects, integrations and workspace settings; no billing |
| **Member** | Create and edit projects and tasks they have access to |
| **Guest** | Access only the projects they are invited to; cannot see the member list |

A workspace can have several Owners, but always at least one. Change a role at any time
from **Settings → Members** → the **⋯** menu next to a person → **Change role**.

## Invite by link
Admins can also enable **Settings → Members → Invite link** for people with an email address
on your company domain. Anyone using the link joins as a Member.
""",
    },
    {
        "title": "Give clients guest access",
        "category": "getting-started-workspace",
        "summary": "How to share specific projects with clients or contractors as free Guests.",
        "beta": False,
        "body": """\
## What Guests can and cannot do
Guests are people outside your organisation — clients, freelancers, agencies. They:

- see **only the projects** they are invited to, never the rest of the workspace;
- can comment, upload attachments and complete tasks assigned to them;
- can create tasks only if the project allows it (**Project settings → Guests can create
  tasks**);
- cannot see the member list, workspace settings, billing or other guests' email addresses.

Guests are **free** and do not use a paid seat. Starter workspaces can have up to 10 guests;
Business and Enterprise workspaces have no limit. The Free plan does not include guests.

## Invite a guest
1. Open the project you want to share.
2. Click **Share** in the top-right corner.
3. Enter the guest's email address and leave the role set to **Guest**.
4. Click **Invite**. The guest receives an email and creates a Flowboard login if they don't
   have one.

## Keep internal work private
- Tasks marked **Internal only** (task menu **⋯ → Hide from guests**) are invisible to guests.
- Comments starting with a 🔒 *internal note* toggle are not shown to guests.
- To remove a guest, open **Share** → the guest's name → **Remove from project**. If they are
  not in any other project they are removed from the workspace automatically.
""",
    },
    {
        "title": "Transfer workspace ownership",
        "category": "getting-started-workspace",
        "summary": "How to make another person Owner before you leave the company or change roles.",
        "beta": False,
        "body": """\
## Why this matters
The Owner role controls billing, SSO and workspace deletion. If the only Owner leaves the
company without handing over, nobody can change the plan or download invoices, and support
has to run a verification process that takes several business days.

## Transfer ownership
1. Go to **Settings → Members**.
2. Find the person who should become Owner. They must already be an Admin or Member (Guests
   cannot become Owners).
3. Click **⋯ → Change role → Owner** and confirm with your password.
4. Optionally change your own role to Admin or Member — you can only do this while another
   Owner exists.

The new Owner gets an email and immediate access to **Settings → Billing**. Invoices now show
the billing contact you set in **Settings → Billing → Billing details**, so update that too.

## If the only Owner has already left
Ask an Admin to contact support from **Help (?) → Contact support** with:

- the workspace name,
- the email address of the departed Owner,
- the last four digits of the card on file or a recent invoice number.

Support will email the departed Owner's address and, if there is no reply within 5 business
days, transfer ownership to the requesting Admin.
""",
    },
    # ------------------------------------------------------------------ projects & tasks
    {
        "title": "Start a project from a template",
        "category": "getting-started-projects",
        "summary": "How to use built-in project templates and save your own projects as templates.",
        "beta": False,
        "body": """\
## Use a built-in template
1. Click **+ New project** in the sidebar.
2. Browse the **Templates** gallery. Popular ones are *Sprint planning*, *Product launch*,
   *Client onboarding*, *Content calendar* and *Bug tracker*.
3. Click **Preview** to see the sections, sample tasks and custom fields.
4. Click **Use template**, name the project and choose a **start date**. Due dates in the
   template are shifted relative to that date.

## Save your own project as a template
1. Open the project and click **⋯ → Save as template**.
2. Choose what to include: sections, tasks, subtasks, descriptions, custom fields, labels,
   and (optionally) assignees.
3. Click **Save**. Comments, attachments and activity history are never copied.

On **Free** and **Starter**, templates you save are private to you. On **Business** and
**Enterprise**, you can publish them as **workspace templates** so everybody sees them under
**Templates → Your workspace**.

## Manage templates
Go to **Settings → Templates** to rename, edit or delete templates. Editing a template does
not change projects that were already created from it. Each workspace can store up to 200
custom templates.
""",
    },
    {
        "title": "Set up recurring tasks",
        "category": "getting-started-projects",
        "summary": "How to make a task repeat daily, weekly, monthly or on a custom schedule.",
        "beta": False,
        "body": """\
## Make a task repeat
1. Open the task and click the **due date** field.
2. Set the first due date, then click **Repeat**.
3. Choose **Daily**, **Weekdays**, **Weekly**, **Monthly**, **Yearly** or **Custom** (for
   example "every 2 weeks on Monday and Thursday" or "last Friday of the month").
4. Choose when the next copy is created:
   - **When this task is completed** (default) — the next task appears as soon as you tick
     the current one.
   - **On schedule** — a new task appears on each date even if the previous one is open.
5. Click **Save**. A 🔁 icon appears on the task card.

## What gets copied
Each new occurrence copies the title, description, assignee, labels, custom fields and
subtasks. Comments and attachments stay on the original task.

## Change or stop a recurrence
- Open the latest occurrence, click the due date → **Repeat** and change the schedule. The
  change applies to future occurrences only.
- To stop, choose **Repeat → Never**. Existing occurrences are not deleted.

## Troubleshooting
- *The next task didn't appear*: with "When this task is completed", nothing happens until
  the task is marked done. Check the project's **Done** section.
- Recurring tasks need a due date; removing the due date also removes the schedule.
""",
    },
    {
        "title": "Upload attachments to tasks",
        "category": "getting-started-projects",
        "summary": "How to attach files, the 100 MB per-file limit and storage quotas.",
        "beta": False,
        "body": """\
## Add a file
- Drag files onto an open task, or click **Attach** (📎) in the task or comment box.
- Paste an image from your clipboard straight into a comment with `Ctrl + V` / `Cmd + V`.
- On mobile, tap **📎 → Photo library, Camera or Files**.

Images, PDFs and videos get a preview; other files show a download button.

## Limits
- **100 MB per file** on every plan. Larger uploads fail with "File is too large (max 100
  MB)". Compress the file or share a link to it in the task description instead.
- Total workspace storage: **Free 1 GB**, **Starter 100 GB**, **Business 1 TB**, Enterprise
  custom. See usage in **Settings → Billing → Usage**.
- When storage is full, uploads fail with "Storage limit reached"; existing files stay
  available.

## Upload stuck or failing?
1. Check the file size and that the name doesn't end in a blocked type (`.exe`, `.bat`,
   `.msi`, `.scr` are rejected for security reasons).
2. Refresh the page and try again — uploads time out after 10 minutes on slow connections.
3. Disable VPN or corporate proxies that inspect uploads, or try another network.
4. Try another supported browser.

## Delete an attachment
Hover the file → **⋯ → Delete**. Deleted files go to the project's **Trash** for 30 days,
then they are removed permanently and the storage is freed.
""",
    },
    {
        "title": "Archive or delete a project",
        "category": "getting-started-projects",
        "summary": "Archiving vs deleting a project, and how to restore either.",
        "beta": False,
        "body": """\
## Archive: hide it but keep everything
Archiving is the right choice for finished work you might need to look up later.

1. Open the project and click **⋯ → Archive project**.
2. Confirm. The project disappears from the sidebar and from search results by default.

Archived projects are **read-only**, keep all tasks, comments and files, and still count
towards storage. They do not count towards the Free plan's 3-active-project limit. Find them
in **Projects → Archived** and click **Restore** to make them active again — there is no time
limit.

## Delete: remove it for good
1. Open the project and click **⋯ → Delete project**.
2. Type the project name to confirm.

Deleted projects go to **Settings → Trash** for **30 days**. Owners and Admins can restore
them from there during that period. After 30 days the project, its tasks and its attachments
are **permanently deleted** and cannot be recovered, even by support.

## Who can do what
| Action | Who |
| --- | --- |
| Archive / restore | Project admins, workspace Admins and Owners |
| Delete | Workspace Admins and Owners |
| Restore from Trash | Workspace Admins and Owners |

If you only want to tidy up, archive. If the project contains data you must remove (for
example personal data at a client's request), delete it and then empty it from the Trash.
""",
    },
    {
        "title": "AI task summaries (beta)",
        "category": "getting-started-projects",
        "summary": "How to turn on AI summaries of long task threads and how your data is handled.",
        "beta": True,
        "body": """\
## What it does
AI task summaries condense a long task — its description, comments and activity — into a
short summary with the current status, decisions made and open questions. It is useful when
you are added to a task with dozens of comments.

This feature is in **beta** and available on **Business** and **Enterprise** plans.

## Turn it on
1. A workspace Owner or Admin opens **Settings → Labs**.
2. Switch on **AI task summaries** and accept the beta terms.
3. Open any task with at least 5 comments and click **✨ Summarize** above the comments.

Summaries are generated on demand and are visible only to the person who requested them.
Each workspace can generate 2,000 summaries per month during the beta.

## Your data
- Task content is processed only to produce the summary and is **not used to train** any
  model.
- Summaries follow your workspace's data region (EU or US).
- Private projects and tasks hidden from guests are only summarised for people who can
  already see them.

## Known limitations
- Attachments and images are not read, only text.
- Summaries may be inaccurate; always check the original comments before acting on them.
- Summaries are currently generated in English, regardless of the task's language.

Send feedback with the 👍 / 👎 buttons under each summary.
""",
    },
    {
        "title": "Automations builder (beta)",
        "category": "getting-started-projects",
        "summary": "How to create 'when this happens, do that' rules in a project.",
        "beta": True,
        "body": """\
## What automations do
Automations run an action automatically when something happens in a project, for example:

- *When a task moves to **Done**, mark all its subtasks complete.*
- *When a task is labelled **Bug**, assign it to the on-call person and set priority High.*
- *When the due date passes, post a comment and notify the assignee.*

The automations builder is in **beta** on **Business** and **Enterprise** plans.

## Create a rule
1. Open a project and click **⋯ → Automations → New rule**.
2. Pick a **trigger** (task created, moved to section, field changed, due date passed).
3. Add optional **conditions** (label is, assignee is, priority is).
4. Add one or more **actions** (move, assign, set field, add comment, send Slack message).
5. Name the rule and click **Turn on**.

## Limits during the beta
- Up to **50 rules** per project.
- Up to **5,000 runs** per workspace per month; usage is shown in **Settings → Labs**.
- Rules cannot trigger other rules, to prevent loops.

## Troubleshooting
Open **Automations → Run history** to see every run with its result. A rule that fails 10
times in a row is paused and shows "Paused after repeated errors"; fix the cause (for example
a deleted assignee or disconnected Slack channel) and click **Resume**.
""",
    },
    {
        "title": "Time tracking (beta)",
        "category": "getting-started-projects",
        "summary": "How to track time on tasks with a timer or manual entries.",
        "beta": True,
        "body": """\
## Turn on time tracking
Time tracking is in **beta** on **Starter**, **Business** and **Enterprise** plans.

1. An Owner or Admin opens **Settings → Labs** and switches on **Time tracking**.
2. Project admins can then enable it per project in **Project settings → Time tracking**.

## Track time
- **Timer**: open a task and click **▶ Start timer**. Only one timer runs at a time; starting
  another stops the first. The running timer is shown in the top bar on every page.
- **Manual entry**: in the task, click **⏱ → Add time**, enter a duration such as `1h 30m`
  and a date, and optionally a note.
- Timers left running stop automatically after 12 hours, and you get a notification to
  correct the entry.

## Reports and exports
Open **Reports → Time** to see hours by person, project or label for any date range. Click
**Export CSV** to download a timesheet (up to 50,000 rows per export).

## Known limitations in the beta
- Time entries cannot yet be locked or approved.
- Billable rates and invoicing are not available.
- The mobile apps show tracked time but can only start and stop timers, not edit entries.
- Time entries are not included in the REST API yet.
""",
    },
    # ------------------------------------------------------------------ account & security
    {
        "title": "Reset a forgotten password",
        "category": "account-security",
        "summary": "How to reset your Flowboard password when you can't sign in.",
        "beta": False,
        "body": """\
## Reset your password
1. On the sign-in page, click **Forgot password?**
2. Enter the email address you use for Flowboard and click **Send reset link**.
3. Open the email "Reset your Flowboard password" and click **Choose a new password**.
4. Enter a new password (at least 10 characters, not one of your last 5) and click **Save**.

The reset link is valid for **60 minutes** and works once. If you see "This reset link has
expired or was already used", request a new one — only the most recent link works.

You are signed out of all other devices after a password reset.

## Didn't get the email?
- Wait 5 minutes and check your spam, junk and "Promotions" folders.
- Make sure you typed the address you signed up with. For security we show the same message
  whether or not an account exists.
- Ask your IT team whether email from Flowboard is being quarantined.
- You can request a new link every 60 seconds, up to 5 times per hour.

## You sign in with Google or SSO
If your workspace uses **Sign in with Google** or **SSO**, Flowboard doesn't store a password
for you, and the reset email will say so. Reset your password with your Google account or
your company's identity provider instead, or ask your IT administrator.
""",
    },
    {
        "title": "Change the email address on your account",
        "category": "account-security",
        "summary": "How to change the email address you use to sign in to Flowboard.",
        "beta": False,
        "body": """\
## Change your email
1. Go to **Settings → Account → Profile**.
2. Next to **Email**, click **Change**.
3. Enter the new address and your current password, then click **Send confirmation**.
4. Open the email sent to the **new** address and click **Confirm email change**. The link is
   valid for **24 hours**.

Until you confirm, you keep signing in with the old address. After confirming, we send a
notice to the old address so you can react if the change wasn't you.

## Things to know
- The new address must not already belong to another Flowboard account. If it does, you'll
  see "This email is already in use". Delete or rename that other account first, or ask
  support to merge them.
- Changing your email does not change your invoices. Billing emails go to the billing contact
  in **Settings → Billing → Billing details**.
- If you sign in with **Google**, changing the email disconnects Google sign-in; set a
  password when prompted.

## You can't change it yourself if…
- Your workspace uses **SSO** — your email is managed by your identity provider. Ask your IT
  administrator to update it there; Flowboard picks up the new address at your next sign-in.
- You no longer have access to the old inbox and can't sign in. Contact support from the
  sign-in page via **Need help? → Contact support**; we'll verify your identity with a
  workspace Owner before changing it.
""",
    },
    {
        "title": "Review active sessions and sign out everywhere",
        "category": "account-security",
        "summary": "How to see where you're signed in and end sessions on lost or shared devices.",
        "beta": False,
        "body": """\
## See your active sessions
Go to **Settings → Account → Security → Active sessions**. Each row shows the device, browser
or app, approximate location based on IP address, and when it was last active. The session
you're using now is marked **This device**.

Web sessions stay signed in for **30 days** of inactivity; mobile apps stay signed in until
you sign out.

## End a session
- Click **Sign out** next to any session to end it immediately.
- Click **Sign out of all other sessions** to keep only the current one. Use this after
  losing a phone or using a shared computer.

Signing out a session doesn't revoke **API tokens**. Manage those separately in **Settings →
Developer → API tokens**.

## Something looks wrong?
If you see a session you don't recognise:

1. Sign out of all other sessions.
2. Change your password (**Settings → Account → Security → Change password**).
3. Turn on two-factor authentication if it isn't on already.
4. Check **Settings → Account → Security → Login history** for failed or unusual sign-ins.
5. Tell your workspace Owner; on Business and Enterprise they can review the workspace
   **Audit log** for actions taken from that session.

## Workspace-wide controls
Owners on Business and Enterprise can set a shorter session length (from 1 hour to 30 days)
under **Settings → Security → Session length**.
""",
    },
    # ------------------------------------------------------------------ 2FA & SSO
    {
        "title": "Set up two-factor authentication",
        "category": "account-security-2fa-sso",
        "summary": "How to protect your account with an authenticator app and backup codes.",
        "beta": False,
        "body": """\
## Turn on 2FA
1. Install an authenticator app that supports TOTP codes on your phone.
2. In Flowboard, go to **Settings → Account → Security → Two-factor authentication**.
3. Click **Enable** and enter your password.
4. Scan the QR code with your authenticator app (or type the setup key shown under it).
5. Enter the 6-digit code from the app and click **Verify**.
6. **Download or print your 10 backup codes** and store them somewhere safe, such as a
   password manager. Each code works once.

From now on you'll be asked for a code after your password on every new device.

## "Invalid verification code"?
- Codes change every 30 seconds. Wait for a fresh one and type it quickly.
- Check your phone's clock is set automatically. A clock that is off by more than a minute
  produces wrong codes.
- Make sure you're using the Flowboard entry in your app, not another account's.

## Require 2FA for everyone
On **Business** and **Enterprise**, Owners can go to **Settings → Security** and switch on
**Require two-factor authentication**. Members without 2FA are asked to set it up at their
next sign-in and can't access the workspace until they do. Guests are included unless you
tick **Exclude guests**.

## Regenerate backup codes
In **Settings → Account → Security → Two-factor authentication**, click **Regenerate backup
codes**. Old codes stop working immediately.
""",
    },
    {
        "title": "Lost your two-factor authentication device",
        "category": "account-security-2fa-sso",
        "summary": "How to sign in when you lost the phone with your authenticator app.",
        "beta": False,
        "body": """\
## Option 1: use a backup code
1. Sign in with your email and password.
2. On the code screen, click **Use a backup code**.
3. Enter one of the 10 backup codes you saved when you turned on 2FA.
4. Once in, go to **Settings → Account → Security → Two-factor authentication**, click
   **Reset**, and set up 2FA again on your new phone. Then regenerate your backup codes.

Each backup code works only once.

## Option 2: ask a workspace Owner or Admin
If you don't have backup codes, an Owner or Admin of your workspace can reset 2FA for you:

1. They go to **Settings → Members**.
2. They click **⋯** next to your name → **Reset two-factor authentication**.
3. You can then sign in with just your password and are asked to set up 2FA again right away.

## Option 3: contact support (Owners only)
If you are the **only Owner** of the workspace and have no backup codes, contact support from
the sign-in page via **Need help? → I lost my 2FA device**. To protect your account we will ask
for:

- the workspace name and your account email,
- the last four digits of the card on file, or the number of a recent invoice,
- confirmation from another Admin if your workspace has one.

Identity checks take up to **3 business days**. Support will never ask for your password.

## Avoid getting locked out again
Store backup codes in a password manager and consider adding a second Owner.
""",
    },
    {
        "title": "Configure SSO with SAML (Enterprise)",
        "category": "account-security-2fa-sso",
        "summary": "How Enterprise Owners connect Flowboard to their identity provider.",
        "beta": False,
        "body": """\
## Before you start
- SAML single sign-on is available on the **Enterprise** plan.
- You need to be a workspace **Owner** and an administrator in your identity provider (IdP).
- Verify your email domain first in **Settings → Security → Domains** by adding the TXT
  record shown there to your DNS.

## Set up SAML
1. In Flowboard, open **Settings → Security → Single sign-on** and click **Configure SAML**.
2. Copy the **ACS URL** and **Entity ID** shown and create a new SAML 2.0 app in your IdP.
3. Set the NameID format to **emailAddress** and map the attributes `email`, `firstName`
   and `lastName`.
4. Download the IdP metadata XML and upload it in Flowboard, or paste the SSO URL and X.509
   certificate manually.
5. Click **Test connection**. Only after a successful test can you click **Enable**.
6. Optionally switch on **Require SSO** so members can't use passwords. Owners keep a
   password fallback for emergencies.

Just-in-time provisioning creates a Member account the first time someone signs in. Use SCIM
(**Settings → Security → SCIM**) to also deactivate people automatically.

## Common errors
- `SAML response is not valid: audience mismatch` — the Entity ID in your IdP doesn't match
  the one shown in Flowboard.
- `Signature validation failed` — the certificate was rotated; upload the new metadata.
- `User not assigned to this application` — assign the person or group to the app in your
  IdP.
- `Clock skew too large` — the IdP server clock is off by more than 3 minutes.
""",
    },
    # ------------------------------------------------------------------ billing & plans
    {
        "title": "Compare Flowboard plans",
        "category": "billing-plans",
        "summary": "What the Free, Starter, Business and Enterprise plans include and cost.",
        "beta": False,
        "body": """\
## Prices
All paid plans are priced **per seat per month**. Yearly billing costs the same as 10 months.

| Plan | Monthly billing | Yearly billing |
| --- | --- | --- |
| **Free** | $0 | $0 |
| **Starter** | $12 per seat/month | $120 per seat/year |
| **Business** | $29 per seat/month | $290 per seat/year |
| **Enterprise** | Custom | Custom, yearly only |

A seat is any Owner, Admin or Member. Guests are free.

## What's included
- **Free** — up to 5 members, 3 active projects, 1 GB storage, 7 days of activity history.
- **Starter** — unlimited projects, 100 GB storage, up to 10 guests, Slack, GitHub and Google
  Calendar integrations, REST API and webhooks.
- **Business** — everything in Starter plus 1 TB storage, unlimited guests, timeline view,
  workspace templates, enforced 2FA, audit log, and access to beta features like AI task
  summaries and automations.
- **Enterprise** — everything in Business plus SAML SSO and SCIM, custom data retention,
  custom storage, invoice billing with net-30 terms, a 99.9% uptime SLA and a named success
  manager.

## Payment options
Starter and Business can be paid monthly or yearly by card. Yearly plans of 10 seats or more
can also be paid by invoice (bank transfer). Enterprise is always invoiced yearly.

## Try before you buy
Any Free workspace can start a **14-day Business trial** once from **Settings → Billing**.
No card is needed; at the end of the trial you return to Free unless you subscribe.
""",
    },
    {
        "title": "How the free Business trial works",
        "category": "billing-plans",
        "summary": "What happens during and after the 14-day Business trial.",
        "beta": False,
        "body": """\
## Start a trial
1. Go to **Settings → Billing**.
2. Click **Start 14-day Business trial**.

No card is required. Every workspace can use the trial **once**. Owners and Admins can start
it; the whole workspace gets Business features immediately, including unlimited guests,
timeline view and beta features in **Settings → Labs**.

## During the trial
- A banner shows how many days are left.
- You can invite as many members as you like; they are not billed during the trial.
- You can subscribe at any time from **Settings → Billing → Choose plan**. Your first charge
  happens when you subscribe, not at the end of the trial, and no trial days are lost —
  the remaining days are added to your first billing period.

## When the trial ends
If you haven't subscribed, the workspace returns to **Free** automatically:

- Nothing is deleted.
- If you have more than 3 active projects, the oldest ones become **read-only** until you
  archive some or upgrade.
- If you have more than 5 members, everyone can still sign in, but only Owners and Admins can
  edit until you remove members or upgrade.
- Guests lose access to projects until you upgrade.
- Business-only settings such as enforced 2FA are kept but paused.

## Need more time?
Contact support before the trial ends; we can extend it by 14 days once for teams that are
still evaluating.
""",
    },
    # ------------------------------------------------------------------ subscription
    {
        "title": "Upgrade or downgrade your plan",
        "category": "billing-plans-subscription",
        "summary": "How to change your plan and when the change takes effect.",
        "beta": False,
        "body": """\
## Change your plan
Only workspace **Owners** can change the plan.

1. Go to **Settings → Billing**.
2. Click **Change plan**.
3. Choose the plan and the billing period (monthly or yearly).
4. Review the price summary and click **Confirm**.

For Enterprise, click **Talk to sales** on the same page; we'll contact you within one
business day.

## Upgrading
- Takes effect **immediately**.
- You pay the **prorated difference** for the rest of the current billing period right away,
  and the full new price from the next renewal.
- Example: halfway through a monthly Starter period with 10 seats, upgrading to Business
  charges about 10 × ($29 − $12) ÷ 2 = $85 today.

## Downgrading
- Takes effect at the **end of the current billing period**. Until then you keep all your
  current features.
- No partial refund is given for the unused difference.
- Features not in the new plan switch off at renewal. For example, moving from Business to
  Starter disables the audit log and limits you to 10 guests — extra guests lose access but
  are not deleted.
- You can cancel a scheduled downgrade any time before renewal from **Settings → Billing**.

## Moving to Free
Choosing Free is the same as cancelling your subscription — see *Cancel your subscription*.
""",
    },
    {
        "title": "How seats are billed and prorated",
        "category": "billing-plans-subscription",
        "summary": "What counts as a seat and how mid-cycle changes affect your bill.",
        "beta": False,
        "body": """\
## What counts as a seat
Every **Owner, Admin and Member** in the workspace uses one paid seat. **Guests** and
deactivated members do not. Pending invitations don't count until the invite is accepted.
See your current count in **Settings → Billing → Seats**.

## Adding and removing people mid-cycle
### Adding people
When someone joins, we add a seat and charge only for the days left in the billing period:

- **Monthly plans** — the prorated amount appears on your next monthly invoice.
- **Yearly plans** — we charge the prorated amount for the rest of the year immediately,
  with a separate invoice.

Example: a Business yearly plan ($290 per seat/year) with 3 months left. Adding one member
costs about $290 × 3 ÷ 12 = $72.50.

### Removing people
When you remove or deactivate a member, the seat is freed. The unused time is **credited** to
your account and deducted from your next invoice. Credits are not refunded to the card.

## Buying seats in advance
Yearly Business and Enterprise workspaces can pre-purchase seats in **Settings → Billing →
Seats → Set seat count**. New members then fill empty seats without extra charges, and you
are only billed if you go above that number.

## Why is my invoice higher than expected?
Open the invoice PDF: each prorated line shows the person, the date they joined and the
number of days charged.
""",
    },
    {
        "title": "Switch between monthly and yearly billing",
        "category": "billing-plans-subscription",
        "summary": "How to move your subscription from monthly to yearly billing or back.",
        "beta": False,
        "body": """\
## Monthly to yearly
Yearly billing costs the same as 10 months, so you save about 17%.

1. Go to **Settings → Billing → Change plan**.
2. Keep your plan and select **Yearly**.
3. Click **Confirm**.

The switch happens **immediately**. We credit the unused part of your current monthly period
and charge the yearly price for your current number of seats. Your renewal date becomes one
year from today.

## Yearly to monthly
1. Go to **Settings → Billing → Change plan**.
2. Select **Monthly** and click **Confirm**.

The change is **scheduled for the end of your yearly term**; you keep the yearly plan until
then. Unused months are not refunded, except within 14 days of the yearly charge — see
*Refund policy*.

## Payment method
Monthly plans can only be paid by card. If you currently pay your yearly plan by invoice, add
a card in **Settings → Billing → Payment method** before switching to monthly, otherwise the
switch can't be scheduled and you'll see "A card is required for monthly billing".

## Good to know
- Your plan's features don't change when you switch periods.
- The next invoice shows the credit and the new charge on separate lines.
""",
    },
    {
        "title": "Cancel your subscription",
        "category": "billing-plans-subscription",
        "summary": "How to cancel a paid plan, what happens to your data and how to come back.",
        "beta": False,
        "body": """\
## Cancel
Only workspace **Owners** can cancel.

1. Go to **Settings → Billing**.
2. Click **Cancel subscription** at the bottom of the page.
3. Tell us why (optional) and click **Confirm cancellation**.

You'll get a confirmation email. Cancelling stops the next renewal; no further charges are
made.

### Can't see the Cancel button?
You're probably not an Owner, or you're on Enterprise, where cancellation follows the terms of
your contract. Contact your account manager or support.

## What happens next
- Your paid plan stays active **until the end of the current billing period**.
- After that, the workspace moves to the **Free** plan. Nothing is deleted.
- Projects beyond the Free limit of 3 active projects become read-only, guests lose access,
  and integrations not available on Free are paused.
- Cancelling doesn't refund the current period. Yearly plans can be refunded within 14 days
  of the charge — see *Refund policy*.

## Change your mind
Before the period ends, click **Resume subscription** in **Settings → Billing**. After it
ends, subscribe again from **Change plan**; your data, projects and settings are still there.

## Cancel vs delete
Cancelling keeps your workspace on Free. If you want your data gone, delete the workspace in
**Settings → General → Delete workspace** after cancelling — deletion becomes permanent after
a 30-day grace period.
""",
    },
    {
        "title": "Refund policy",
        "category": "billing-plans-subscription",
        "summary": "When Flowboard refunds payments for yearly and monthly plans.",
        "beta": False,
        "body": """\
## Yearly plans
You can get a **full refund within 14 days of a yearly charge**, including renewals. This also
covers the extra charge when you upgrade or add seats to a yearly plan.

To request it:
1. Cancel the subscription or undo the change (for example remove the seats you added).
2. Contact support from **Help (?) → Contact support → Billing**, with the invoice number.

After 14 days, yearly payments are not refunded, but your plan stays active until the end of
the term.

## Monthly plans
Monthly payments are **not refunded**. When you cancel, you keep the plan until the end of the
month you have paid for, and you are not charged again.

## Exceptions we always refund
- **Double charges** — see *I was charged twice*.
- Charges made after you cancelled, caused by an error on our side.
- Seats charged for people who were removed within 24 hours of being added by mistake.

## How refunds are paid
Refunds go back to the original payment method: card refunds take **5–10 business days** to
appear on your statement, bank transfers up to 10 business days. We email a credit note (PDF)
when the refund is issued; you'll also find it under **Settings → Billing → Invoices**.

We can't refund to a different card or account. If your card was closed, your bank forwards the
refund to your new card or account.
""",
    },
    # ------------------------------------------------------------------ payments & invoices
    {
        "title": "Download invoices and receipts",
        "category": "billing-plans-payments",
        "summary": "Where to find and download PDF invoices, receipts and credit notes.",
        "beta": False,
        "body": """\
## Download a PDF
1. Go to **Settings → Billing → Invoices**.
2. Find the invoice by date or number (for example `FB-2024-001234`).
3. Click **Download PDF**. For card payments you can also click **Receipt** to get the payment
   receipt.

Owners can download every invoice. Admins and Members can't see billing unless an Owner adds
them as a **billing contact**.

### Get invoices by email
Add up to 5 addresses — for example your accounts payable inbox — under **Settings → Billing →
Billing details → Billing contacts**. Each new invoice and receipt is emailed to them as a PDF
attachment. Billing contacts don't need a Flowboard account.

## Change what's on the invoice
Company name, address and tax ID are taken from **Settings → Billing → Billing details**.
Changes apply to **future invoices**. To re-issue a past invoice with corrected details,
contact support with the invoice number; we can re-issue invoices from the last 12 months.

## Invoice, receipt or credit note?
- **Invoice** — what you owe, issued at every charge.
- **Receipt** — confirms a card payment was received.
- **Credit note** — issued when we refund or credit part of an invoice.

## Can't find an invoice?
- Check you're in the right workspace — each workspace is billed separately.
- Invoices for the current period are created on the renewal date, not before.
- Free workspaces don't receive invoices.
""",
    },
    {
        "title": "Update your card or fix a failed payment",
        "category": "billing-plans-payments",
        "summary": "How to change the payment card and what happens when a payment fails.",
        "beta": False,
        "body": """\
## Update the card
1. Go to **Settings → Billing → Payment method**.
2. Click **Update card** and enter the new card details.
3. Complete your bank's verification (3-D Secure) if asked.

The new card is used for all future charges. If a payment is overdue, we retry it right away.

## When a payment fails
You'll get an email and see a red banner saying "Your last payment failed". Then:

1. We retry the charge after 1, 3 and 7 days.
2. After **14 days** without payment, the workspace becomes **read-only**: everyone can view
   and export, but nobody can edit until the invoice is paid.
3. After **30 days** the subscription is cancelled and the workspace moves to Free.

## Common error messages
- "Your card was declined" — the bank refused the charge. Call your bank or use another card.
- "Payment failed: authentication required" — your bank needs 3-D Secure confirmation. Click
  **Pay now** in the banner and confirm in your banking app.
- "Your card has insufficient funds" — add funds or use another card, then click **Retry
  payment**.
- "Your card has expired" — update the card as above.

## Checklist if it keeps failing
- The billing address and postcode match what your bank has on file.
- Your card allows online and international payments.
- Company cards may have a monthly limit; yearly charges often exceed it.
- Prepaid and virtual cards aren't always accepted for recurring charges.
""",
    },
    {
        "title": "I was charged twice",
        "category": "billing-plans-payments",
        "summary": "What to do if you see two charges from Flowboard and how long refunds take.",
        "beta": False,
        "body": """\
## First, check whether it's really two charges
Many "double charges" are one charge plus a temporary **authorization hold**:

- When you add or update a card, we place a small hold (usually $1 or €1) to verify it.
- When a payment fails and is retried, your bank may show the failed attempt as *pending*.

Holds and failed attempts are never collected. They disappear from your statement within
**3–5 business days**, depending on your bank.

## Compare with your invoices
Go to **Settings → Billing → Invoices**. If there is **one** invoice for the amount, you
were charged once. Other reasons for two separate charges on the same day:

- You have **two workspaces**, each billed separately. Check the workspace switcher.
- You **added seats or upgraded** on a yearly plan, which creates a separate prorated invoice.

## If you were charged twice
Contact support via **Help (?) → Contact support → Billing** and include:

- the workspace name,
- the dates and amounts of both charges,
- the last four digits of the card.

We confirm duplicate charges within one business day and refund the duplicate to the same
card. Refunds take **5–10 business days** to appear on your statement, depending on your bank.
You'll receive a credit note by email as soon as the refund is issued.
""",
    },
    {
        "title": "Change billing currency or VAT ID",
        "category": "billing-plans-payments",
        "summary": "How to change the currency you're billed in and add or update a VAT or tax ID.",
        "beta": False,
        "body": """\
## Billing currency
Flowboard bills in **USD, EUR or GBP**. The currency is set when you first subscribe, based on
your billing country.

You can change it only **at renewal**:

1. Go to **Settings → Billing → Billing details**.
2. Under **Currency**, click **Change at next renewal** and choose the new currency.
3. The next invoice and all later ones use the new currency and its price list.

You can't change the currency in the middle of a billing period, and past invoices are never
converted. If you need it changed sooner, cancel and resubscribe once the current period ends.

## Add or update a VAT ID
1. Go to **Settings → Billing → Billing details**.
2. Under **Tax ID**, choose the type (for example *EU VAT*, *UK VAT*, *ABN*) and enter the
   number, including the country prefix such as `DE123456789`.
3. Click **Save**. We validate EU VAT numbers automatically; invalid numbers show "We couldn't
   validate this VAT number".

For valid EU business VAT IDs outside Flowboard's country of registration, invoices show
**reverse charge** and no VAT is added.

## Already paid with VAT?
Tax IDs are **not applied retroactively** to paid invoices. Contact support within 30 days of
the invoice date and we'll issue a credit note and re-issue the invoice with your VAT ID.
""",
    },
    {
        "title": "Pay by invoice and bank transfer",
        "category": "billing-plans-payments",
        "summary": "Who can pay by invoice instead of card and how bank transfer payments work.",
        "beta": False,
        "body": """\
## Who can pay by invoice
- **Enterprise** — always billed yearly by invoice, usually with net-30 terms.
- **Starter and Business** — yearly plans with **10 or more seats** can switch to invoice.
- Monthly plans must be paid by card.

## Switch to invoice payment
1. Go to **Settings → Billing → Payment method**.
2. Click **Pay by invoice instead**. If the option is greyed out, check the conditions above.
3. Confirm your billing contacts and company details.

At your next renewal we email an invoice with our bank details and a payment reference.
Payment is due within **30 days**.

## Paying the invoice
- Always include the **invoice number** (for example `FB-2024-001234`) as the payment
  reference, or we can't match your payment.
- Pay the exact amount in the invoice currency. Bank charges are the payer's responsibility.
- Payments are matched within 3 business days of arriving; the invoice status then changes to
  **Paid** in **Settings → Billing → Invoices**.

### Overdue invoices
We send reminders at 7 and 14 days past due. After 30 days overdue the workspace becomes
read-only until payment arrives.

## Purchase orders and vendor forms
If your company needs a PO number on invoices, add it under **Settings → Billing → Billing
details → PO number** before the invoice is issued. For supplier onboarding forms and tax
forms, contact support with the form attached.
""",
    },
    # ------------------------------------------------------------------ integrations & API
    {
        "title": "Manage connected integrations",
        "category": "integrations-api",
        "summary": "Where to see, connect and disconnect integrations and who is allowed to.",
        "beta": False,
        "body": """\
## Where integrations live
Open **Settings → Integrations** to see every integration available to your workspace:
Slack, GitHub, Google Calendar, webhooks and the REST API. Each card shows whether it is
**Connected**, who connected it, and when.

Integrations require a **Starter** plan or higher. On Free, the cards show an **Upgrade**
button.

## Who can connect what
| Integration | Who can connect |
| --- | --- |
| Slack, GitHub | Owners and Admins (workspace-wide) |
| Google Calendar | Every member, for their own calendar |
| API tokens | Every member, for their own account |
| Webhooks | Owners and Admins |

Owners can restrict personal API tokens to Admins only in **Settings → Security → API
access**.

## Disconnect an integration
1. Open **Settings → Integrations** and click the integration.
2. Click **Disconnect** and confirm.

Disconnecting stops all syncing immediately. Data already in Flowboard — for example linked
GitHub pull requests shown on tasks — stays, but is no longer updated.

## When the person who connected it leaves
Slack and GitHub connections belong to the workspace and keep working when that person is
removed. Reconnect from the integration page if you see "Authorization revoked" on the card —
this happens when the connection is removed on the Slack or GitHub side.
""",
    },
    {
        "title": "Fix a disconnected or failing integration",
        "category": "integrations-api",
        "summary": "A checklist for integrations that stopped syncing or show an error state.",
        "beta": False,
        "body": """\
## Check the status
Go to **Settings → Integrations**. A card with a ⚠️ icon shows the last error, for example:

- "Authorization revoked" — the app was removed or its permissions changed on the other side.
- "Token expired" — the account that connected it changed password or left the company.
- "Paused: plan does not include integrations" — the workspace moved to Free.

## Checklist
1. **Reconnect**: open the integration and click **Reconnect**. Sign in with an account that
   still has admin rights in Slack or GitHub.
2. **Check permissions**: for GitHub, confirm the Flowboard app still has access to the
   repositories you need; for Slack, invite the Flowboard bot to private channels with
   `/invite @Flowboard`.
3. **Check the plan**: integrations need Starter or higher. After upgrading, click **Resume**.
4. **Check the project mapping**: if a project was archived or a Slack channel renamed or
   archived, update the mapping in the integration settings.
5. **Look at the status page** (**Help (?) → System status**) for incidents affecting
   integrations.

## After reconnecting
Events that happened while the integration was broken are **not replayed**. For GitHub, we
re-scan pull requests updated in the last 7 days when you reconnect. For Slack, missed
notifications are not resent.

## Still broken?
Contact support with the integration name, the exact error message from the card and the
approximate time it started.
""",
    },
    {
        "title": "Connect Slack",
        "category": "integrations-api",
        "summary": "How to post updates to Slack channels and create tasks from Slack.",
        "beta": False,
        "body": """\
## Connect your Slack workspace
1. A Flowboard Owner or Admin goes to **Settings → Integrations → Slack** and clicks
   **Connect**.
2. Sign in to Slack and approve the permissions. You need permission to install apps in your
   Slack workspace.
3. You're returned to Flowboard and the card shows **Connected**.

## Send project updates to a channel
1. Open a project and click **⋯ → Integrations → Slack**.
2. Choose a channel and the events to post: new tasks, completed tasks, comments, due-date
   changes or overdue tasks.
3. Click **Save**.

For a private channel, first type `/invite @Flowboard` in that channel.

## Use Flowboard from Slack
- `/flowboard create Fix checkout bug` creates a task in your default project.
- Click **⋯ → More actions → Create Flowboard task** on any Slack message to turn it into a
  task with a link back to the message.
- Links to Flowboard tasks pasted in Slack expand into a preview with status and assignee.

Each person connects their own Slack account the first time they use a command, so tasks are
created under their name.

### Personal notifications
Members can get their own mentions and assignments as Slack direct messages: **Settings →
Notifications → Slack** → **Send to Slack DM**.

## Troubleshooting
- "Channel not found" — the channel was renamed, archived or the bot was removed.
- No previews — check that link previews are enabled in the Slack workspace.
""",
    },
    {
        "title": "Link GitHub issues and pull requests to tasks",
        "category": "integrations-api",
        "summary": "How to link commits, branches and pull requests to Flowboard tasks.",
        "beta": False,
        "body": """\
## Install the GitHub app
1. A Flowboard Owner or Admin goes to **Settings → Integrations → GitHub** and clicks
   **Install**.
2. Choose the GitHub organisation and select **all repositories** or only specific ones.
3. Approve. The card shows the connected organisation and repositories.

## Link work to a task
Every task has an ID like `FB-123`, shown at the top of the task. Include it in:

- a **branch name**: `fb-123-fix-login`,
- a **commit message**: `Fix redirect loop (FB-123)`,
- a **pull request title or description**: `FB-123 Fix login redirect`.

Linked branches, commits and pull requests appear in the task's **Development** panel with
their status (open, draft, merged, closed) and review state.

### Move tasks automatically
Write `Closes FB-123` or `Fixes FB-123` in a pull request description. When the PR is
**merged**, the task moves to the project's **Done** section. Change the target section in
**Project settings → GitHub → When a PR is merged**.

### Link GitHub issues
Paste a GitHub issue link in a task's **Development** panel → **Link issue**. The issue's
state is synced; closing the issue doesn't complete the task unless you enable **Sync
issue state**.

## Troubleshooting
- Nothing appears on the task: the repository may not be selected in the app's repository
  access. Edit it in your GitHub organisation's app settings.
- Task IDs are case-insensitive, but must include the prefix and number.
""",
    },
    {
        "title": "Sync tasks with Google Calendar",
        "category": "integrations-api",
        "summary": "How to show your Flowboard tasks with due dates in Google Calendar.",
        "beta": False,
        "body": """\
## Connect your calendar
Each member connects their own Google account.

1. Go to **Settings → Integrations → Google Calendar** and click **Connect**.
2. Sign in with Google and allow Flowboard to manage its own calendar.
3. Choose what to sync: **Tasks assigned to me**, **Tasks I follow**, or specific projects.

Flowboard creates a separate calendar named **Flowboard** in your Google account. It never
reads or edits your other calendars.

## How the sync works
- Tasks with a due date appear as all-day events; tasks with a due time appear at that time
  with a 30-minute duration.
- Changes in Flowboard reach Google Calendar within **15 minutes**.
- On **Business** and **Enterprise**, moving an event in Google Calendar updates the task's
  due date (two-way sync). On Starter, the sync is one-way.
- Completed tasks are removed from the calendar after 24 hours.

## Not updating?
1. Check **Settings → Integrations → Google Calendar** for "Authorization expired" and click
   **Reconnect**.
2. Make sure the **Flowboard** calendar is visible (ticked) in Google Calendar's list.
3. Tasks without a due date are never synced.
4. Wait 15 minutes, then click **Sync now**.
5. If events are duplicated after reconnecting with a different Google account, disconnect,
   delete the old Flowboard calendar in Google, and connect again.

## Disconnect
Click **Disconnect**. The Flowboard calendar stops updating; delete it in Google Calendar if
you no longer need it.
""",
    },
    # ------------------------------------------------------------------ REST API & webhooks
    {
        "title": "Create API tokens and authenticate",
        "category": "integrations-api-developers",
        "summary": "How to create a personal API token and use it to call the Flowboard REST API.",
        "beta": False,
        "body": """\
## Create a token
The REST API is available on **Starter** plans and higher.

1. Go to **Settings → Developer → API tokens** and click **New token**.
2. Give it a name (for example "Reporting script") and an expiry: 30 days, 90 days, 1 year
   or never.
3. Choose scopes: `tasks:read`, `tasks:write`, `projects:read`, `projects:write`,
   `members:read`, `webhooks:write`.
4. Click **Create** and **copy the token now** — it starts with `fb_` and is shown only once.

A token acts as you: it can only access projects you can access, with the scopes you chose.

## Authenticate requests
Send the token in the `Authorization` header on every request:

```
GET /v1/tasks?project_id=prj_8f2k1
Authorization: Bearer fb_live_xxxxxxxxxxxxxxxx
Accept: application/json
```

All requests must use HTTPS. The API returns JSON with UTF-8 encoding.

## Authentication errors
- `401 invalid_token` — the token is wrong, revoked or expired.
- `403 insufficient_scope` — the token is missing a scope needed for this endpoint.
- `403 api_access_restricted` — an Owner has limited API tokens to Admins.
- `402 plan_required` — the workspace is on Free.

## Keep tokens safe
Never put tokens in front-end code or public repositories. Revoke a leaked token
immediately in **Settings → Developer → API tokens → Revoke**. Tokens of removed members stop
working automatically.
""",
    },
    {
        "title": "API rate limits and 429 errors",
        "category": "integrations-api-developers",
        "summary": "The Flowboard API rate limits and how to handle HTTP 429 Too Many Requests.",
        "beta": False,
        "body": """\
## The limits
- **10 requests per second per token**, with short bursts of up to 20 requests allowed.
- **5 concurrent requests** per token.
- Export-type endpoints such as `/v1/exports` are limited to **10 requests per hour**.

Limits apply per token, so two scripts sharing one token share the limit.

### Rate-limit headers
Every response includes:

- `X-RateLimit-Limit` — requests allowed per second,
- `X-RateLimit-Remaining` — requests left in the current window,
- `X-RateLimit-Reset` — seconds until the window resets.

## When you exceed the limit
The API answers **HTTP 429** with error code `rate_limited` and a `Retry-After` header giving
the number of seconds to wait:

```
HTTP/1.1 429 Too Many Requests
Retry-After: 2
{"error": {"code": "rate_limited", "message": "Too many requests"}}
```

## How to handle 429 correctly
1. Stop sending requests with that token.
2. Wait for the number of seconds in `Retry-After`.
3. Retry the request. If you get another 429, back off exponentially (2 s, 4 s, 8 s…) with
   some random jitter.

## Reduce the number of calls
- Use `limit=100` (the maximum) when listing resources.
- Use `updated_since` to fetch only changed tasks instead of polling everything.
- Use **webhooks** instead of polling for changes.
- Enterprise customers who need more can ask their account manager for a higher limit.
""",
    },
    {
        "title": "Set up webhooks and verify signatures",
        "category": "integrations-api-developers",
        "summary": "How to receive events with webhooks and verify they came from Flowboard.",
        "beta": False,
        "body": """\
## Create a webhook
1. An Owner or Admin goes to **Settings → Developer → Webhooks → New webhook**.
2. Enter your endpoint URL (HTTPS only) and choose events such as `task.created`,
   `task.updated`, `task.completed`, `comment.created` or `project.archived`.
3. Optionally limit it to certain projects, then click **Create**.
4. Copy the **signing secret** (starts with `whsec_`).

Click **Send test event** to send a `ping` event to your endpoint.

## Verify the signature
Each request has a `Flowboard-Signature` header such as `t=1714060800,v1=5257a8...`. To verify:

1. Take the timestamp `t` and the **raw** request body (before JSON parsing).
2. Compute HMAC-SHA256 of `t + "." + body` using your signing secret.
3. Compare the hex result with `v1` using a constant-time comparison.
4. Reject the request if `t` is more than **5 minutes** old, to prevent replays.

A common cause of "signature mismatch" is re-serialising the JSON before hashing — always
use the bytes exactly as received.

## Delivery and retries
- Respond with any **2xx** status within **10 seconds**; do slow work asynchronously.
- Failed deliveries are retried up to 8 times over 24 hours with exponential backoff.
- A webhook failing continuously for 3 days is **disabled** and Owners get an email.
- Events may arrive out of order or more than once; use the `event_id` to deduplicate.

See every delivery, its response code and body in **Webhooks → your webhook → Deliveries**,
and click **Redeliver** to send one again.
""",
    },
    {
        "title": "API pagination and error codes",
        "category": "integrations-api-developers",
        "summary": "How list endpoints paginate and what the Flowboard API error codes mean.",
        "beta": False,
        "body": """\
## Pagination
List endpoints such as `/v1/tasks` and `/v1/projects` use cursor pagination:

1. Request the first page with `limit` (1–100, default 25).
2. The response includes `next_cursor`. If it's `null`, you're on the last page.
3. Request the next page with `?cursor=<next_cursor>`, keeping the same filters.

Cursors expire after 24 hours. Don't build them yourself or reuse them with other filters.

## Error format
Errors always return JSON in this shape:

```
{"error": {"code": "validation_failed", "message": "due_date must be a date",
 "field": "due_date", "request_id": "req_4Hk2..."}}
```

Include the `request_id` when you contact support.

## Error codes
| Status | Code | Meaning |
| --- | --- | --- |
| 400 | `validation_failed` | A field is missing or has the wrong format |
| 401 | `invalid_token` | Token missing, wrong, revoked or expired |
| 403 | `insufficient_scope` | Token lacks the required scope |
| 403 | `forbidden` | You can't access this project or task |
| 404 | `not_found` | The object doesn't exist or was deleted |
| 409 | `conflict` | The object was changed by someone else; fetch and retry |
| 422 | `invalid_state` | For example, editing an archived project |
| 429 | `rate_limited` | Too many requests; wait for `Retry-After` |
| 500/503 | `server_error` | Temporary problem; retry with backoff |

## Versioning
The current version is `v1`. We add fields without notice, so ignore fields you don't know.
Breaking changes get a new version and at least 12 months' notice.
""",
    },
    # ------------------------------------------------------------------ troubleshooting
    {
        "title": 'Stuck in a login loop or seeing "Session expired"',
        "category": "troubleshooting",
        "summary": "How to fix sign-in loops and repeated 'Session expired' errors.",
        "beta": False,
        "body": """\
## Symptoms
- You sign in and are immediately sent back to the sign-in page.
- You see "Session expired. Please sign in again." every few minutes.
- SSO users see the identity provider page flash and return to Flowboard's sign-in.

These almost always come from cookies being blocked, stale or conflicting.

## Checklist
1. **Clear cookies for Flowboard only**: in your browser's settings, open site data, search
   for Flowboard, delete its cookies and site data, then close all Flowboard tabs and sign in
   again.
2. **Allow cookies**: make sure cookies aren't blocked for Flowboard. Strict tracking
   protection can block the sign-in cookie; add Flowboard as an exception.
3. **Try a private window**. If it works there, a browser extension is the cause — disable
   privacy, ad-blocking or cookie-cleaning extensions one at a time.
4. **Check your computer's clock**. If the date or time is wrong by more than a few minutes,
   sessions expire immediately. Set time automatically.
5. **One account per browser profile**: being signed in to two Flowboard accounts in the same
   browser can cause loops. Sign out of both, then sign in to one.
6. **VPN or proxy**: a connection that changes IP address on every request can end your session.
   Try without the VPN.

## Still happening?
- Your workspace may have a short **session length** set by an Owner (**Settings → Security →
  Session length**). Ask them to check.
- SSO users: ask your IT team to check the SAML settings in your identity provider.
- Contact support with your browser name and version and the time it happened.
""",
    },
    {
        "title": "Supported browsers and system requirements",
        "category": "troubleshooting",
        "summary": "Which browsers and operating systems Flowboard supports.",
        "beta": False,
        "body": """\
## Supported browsers
Flowboard supports the **two latest major versions** of:

- Chrome
- Firefox
- Safari (macOS and iPadOS)
- Edge

Other browsers based on the same engines usually work but aren't tested. Internet Explorer
and browsers more than two versions old are **not supported**; you'll see a banner saying
"Your browser is not supported" and some features may not load.

JavaScript, cookies and local storage must be enabled for Flowboard.

## Mobile and desktop
- **iOS app** — iOS 16 or later, iPhone and iPad.
- **Android app** — Android 10 or later.
- Mobile browsers work for quick checks but the apps are recommended.
- The desktop app for macOS and Windows uses the same engine as Chrome and is updated
  automatically.

## Recommended setup
- A screen at least 1280 pixels wide for board and timeline views.
- A stable connection of at least 1 Mbit/s; uploads of large attachments need more.
- Corporate firewalls must allow WebSocket connections, or real-time updates won't appear
  until you refresh.

## Check your version
Go to **Help (?) → About** in Flowboard. It shows your browser and version, whether it's
supported, and whether real-time updates are connected. Include this information when you
contact support.
""",
    },
    {
        "title": "Notifications not arriving (email and push)",
        "category": "troubleshooting",
        "summary": "A checklist for missing email notifications and mobile push notifications.",
        "beta": False,
        "body": """\
## Check your notification settings
Go to **Settings → Notifications** and check:

- the event (mentions, assignments, comments, due dates) is switched on for **Email** and/or
  **Push**;
- **Email frequency** — with **Daily digest**, emails arrive once a day at 8:00 in your time
  zone, not immediately;
- **Quiet hours** — no push notifications are sent during this time;
- project-level overrides: a muted project (**⋯ → Mute project**) sends nothing.

Flowboard never notifies you about your own actions.

## Email not arriving
1. Search spam, junk and other folders for mail from Flowboard.
2. Add Flowboard's sending address, shown at the bottom of **Settings → Notifications**, to
   your contacts or your company's allowlist.
3. If your email bounced before, we stop sending and show "Email delivery paused" on the
   Notifications page. Click **Resume email** once the problem is fixed.
4. Ask your IT team whether messages are held in quarantine.

## Push notifications not arriving
1. Allow notifications for Flowboard in your phone's settings.
2. Turn off Focus / Do Not Disturb modes, or allow Flowboard in them.
3. **Active on desktop?** We skip push notifications while you're active in the web app, and
   send them only if you haven't seen the item within 2 minutes.
4. Android: disable battery optimisation for Flowboard.
5. Sign out of the app and back in to refresh the push registration.

## Still missing?
Use **Settings → Notifications → Send test notification**. If the test arrives, the cause is a
setting; if not, contact support with the result.
""",
    },
    {
        "title": "Check service status during an outage",
        "category": "troubleshooting",
        "summary": "How to find out whether Flowboard is down and get notified about incidents.",
        "beta": False,
        "body": """\
## Is it just me?
If Flowboard won't load or is very slow:

1. Open the status page from **Help (?) → System status**, or from the link on the sign-in page.
   It shows the current state of the web app, mobile sync, API, webhooks, integrations, email
   notifications and file uploads, separately for the **EU** and **US** regions.
2. If everything is **Operational**, the problem is probably local — try another browser, a
   private window, or another network.
3. If a component shows **Degraded performance**, **Partial outage** or **Major outage**, our
   team is already working on it.

## Get notified
On the status page, click **Subscribe to updates** and choose email or SMS. You'll receive a
message when an incident starts, at each update, and when it's resolved. You can subscribe to
specific components only, such as the API.

## During an outage
- Don't keep resubmitting forms; changes you made just before the incident are usually saved.
- Mobile apps keep working in **offline mode** and sync once service is restored.
- Webhooks and integration events are queued and delivered later; nothing needs to be resent.

## After an incident
Every major incident gets a post-incident report on the status page within 5 business days,
explaining what happened and what we changed. **Enterprise** customers receive service credits
automatically if monthly uptime falls below the 99.9% SLA.

Scheduled maintenance is announced on the status page at least 72 hours in advance.
""",
    },
    # ------------------------------------------------------------------ mobile apps
    {
        "title": "Install and sign in to the mobile apps",
        "category": "troubleshooting-mobile",
        "summary": "How to install the Flowboard apps for iOS and Android and sign in.",
        "beta": False,
        "body": """\
## Install
- **iPhone and iPad** — search for "Flowboard" in the App Store. Requires iOS 16 or later.
- **Android** — search for "Flowboard" in Google Play. Requires Android 10 or later.

The apps are free on every plan.

## Sign in
1. Open the app and tap **Sign in**.
2. Choose the same method you use on the web: email and password, **Continue with Google**,
   or **Continue with SSO**.
3. With 2FA on, enter the 6-digit code from your authenticator app.
4. If you belong to several workspaces, pick one. Switch later with your avatar → **Switch
   workspace**.

Faster: on the web go to **Settings → Account → Mobile apps → Show QR code** and scan it with
the app's **Sign in with QR code** option. The code is valid for 2 minutes.

## What you can do in the apps
- See My tasks, Inbox, boards and lists.
- Create, edit, assign and complete tasks; comment and attach photos.
- Receive push notifications.
- Work offline — see *Mobile app not syncing or offline mode*.

Workspace settings, billing, integrations and templates are only available on the web.

## Sign-in problems
- "Your organization requires SSO" — use **Continue with SSO** and enter your work email.
- "Workspace not available on mobile" — an Enterprise Owner has restricted mobile access in
  **Settings → Security → Mobile access**.
- The app closes right after sign-in — update to the latest version and restart your phone.
""",
    },
    {
        "title": "Mobile app not syncing or offline mode",
        "category": "troubleshooting-mobile",
        "summary": "How offline mode works and how to fix changes that don't sync.",
        "beta": False,
        "body": """\
## How offline mode works
The iOS and Android apps keep a copy of **My tasks** and the **10 most recently opened
projects** on your device. Without a connection you can still:

- view those tasks and their comments,
- create tasks, edit fields, comment and complete tasks.

A grey "Offline — changes will sync later" bar appears at the top. Changes are queued and sent
automatically when you're back online. Attachments can't be uploaded offline; they're queued
too.

If the same field was changed on another device in the meantime, the **most recent edit
wins**, and the overwritten value is kept in the task's activity log.

## Changes not syncing?
1. Check the top of the screen. "Sync paused — you're offline" means no connection reached
   Flowboard; try switching between Wi-Fi and mobile data.
2. Open your avatar → **Settings → Sync status**. It shows pending changes and the last
   successful sync. Tap **Sync now**.
3. Pull down on any list to refresh.
4. Make sure the app is up to date in the App Store or Google Play.
5. Check background data: on Android, allow background data and disable battery optimisation
   for Flowboard; on iOS, enable **Background App Refresh**.
6. Check the status page (**Help (?) → System status**) for a mobile sync incident.

## Last resort
In **Settings → Sync status**, tap **Reset local data**. The app re-downloads everything.
**Pending changes that haven't synced are lost**, so first check that the pending count is 0
or note your changes.
""",
    },
    {
        "title": "Mobile app crashes or won't open",
        "category": "troubleshooting-mobile",
        "summary": "How to fix the iOS or Android app crashing, freezing or showing a blank screen",
        "beta": False,
        "body": """\
## Quick fixes
Try these in order and test the app after each step:

1. **Force close** the app and open it again.
2. **Update** Flowboard from the App Store or Google Play. Versions older than 6 months may
   stop working after server updates and show "Please update Flowboard to continue".
3. **Restart** your phone.
4. **Update your operating system**: iOS 16+ or Android 10+ is required.
5. **Free up space** — the app needs at least 500 MB free to store its offline data.

## Clear the app's data
Before you do this, open **Settings → Sync status** (if the app opens at all) and make sure
there are no pending changes.

- **Android**: system **Settings → Apps → Flowboard → Storage → Clear storage**.
- **iOS**: delete the app and reinstall it from the App Store.

Then sign in again. Your tasks download from the server.

## Crashes in one place only
If the app crashes only when opening a specific project or task, it's usually a large
attachment preview or a very long task. Open the same item on the web and tell support its
task ID (for example `FB-123`).

## Send us a report
In the app, go to your avatar → **Help → Send diagnostics**. This sends logs (no task
content) to support and gives you a reference code. Contact support with that code, your phone
model and your OS version. If the app won't open, shake the phone on the splash screen to open
the diagnostics screen.
""",
    },
    # ------------------------------------------------------------------ data & privacy
    {
        "title": "Where your data is stored and how we protect it",
        "category": "data-privacy",
        "summary": "Flowboard's data regions, encryption, backups and security practices.",
        "beta": False,
        "body": """\
## Data regions
Each workspace chooses a region when it's created:

- **EU** — data centers in Frankfurt, Germany, with a backup site in Dublin, Ireland.
- **US** — data centers in Virginia, with a backup site in Oregon.

Your projects, tasks, comments, attachments and backups stay in that region. Check yours in
**Settings → General → Data region**. Moving a workspace between regions is available on
**Enterprise** only, as a scheduled migration.

## How we protect your data
- **Encryption**: TLS 1.2 or later in transit; AES-256 at rest for databases, files and
  backups.
- **Backups**: encrypted backups every 24 hours plus point-in-time recovery for 7 days.
  Backups are kept for 35 days.
- **Access**: only a small on-call engineering team can access production systems, using
  hardware security keys, and every access is logged. Support staff see your content only
  if you grant temporary access from **Settings → Security → Support access**.
- **Testing**: independent penetration tests every year and a public vulnerability
  disclosure program.
- **Availability**: infrastructure is spread across multiple availability zones in each region.

## Controls you have
- Enforce 2FA and shorter sessions (**Business**), SAML SSO and SCIM (**Enterprise**).
- Review actions in the **Audit log** (**Settings → Security → Audit log**, Business and up).
- Custom data retention rules (**Enterprise**).

## Compliance documents
Owners on Business and Enterprise can download our security overview, data processing
agreement (DPA) and list of sub-processors from **Settings → Security → Compliance**.
""",
    },
    {
        "title": "Report a security vulnerability",
        "category": "data-privacy",
        "summary": "How to responsibly report a security issue you found in Flowboard.",
        "beta": False,
        "body": """\
## How to report
If you believe you've found a security vulnerability in Flowboard, report it privately so we
can fix it before it's exploited:

1. Go to **Help (?) → Report a security issue**. You can do this without signing in from
   the link at the bottom of the sign-in page.
2. Describe the issue, the affected part of Flowboard (web app, API, mobile apps) and the
   steps to reproduce it.
3. Add proof-of-concept code, screenshots or request/response samples if you have them.
4. Submit. You'll receive a reference number right away.

Please don't report security issues through regular support tickets, social media or public
forums.

## What happens next
- We acknowledge your report within **2 business days**.
- We confirm whether it's a valid issue and its severity within **10 business days**.
- We keep you updated until the fix is released and credit you in our hall of fame if you
  wish.

## Rules for testing
- Only test against your own account and workspace. Never access, change or delete other
  people's data.
- No denial-of-service testing, spam, or social engineering of our staff or customers.
- Don't run automated scanners that send more than 10 requests per second.
- Give us reasonable time to fix the issue before disclosing it publicly (normally 90 days).

If you follow these rules, we won't take legal action against you for your research.

## Not a vulnerability
Issues like missing security headers with no practical impact, self-XSS, or rate limits on
non-sensitive endpoints are usually out of scope.
""",
    },
    {
        "title": "Request a GDPR data export",
        "category": "data-privacy",
        "summary": "How to get a copy of your personal data from Flowboard under GDPR.",
        "beta": False,
        "body": """\
## Export your personal data
Anyone with a Flowboard account can request a copy of their personal data:

1. Go to **Settings → Account → Privacy**.
2. Click **Request my data**.
3. Confirm with your password (or your SSO sign-in).

We email you when the export is ready — usually within **48 hours**, and always within 30 days
as required by GDPR. The download is a ZIP file with JSON and CSV files, and the link is valid
for **7 days**.

## What's included
- Your profile, email addresses and notification settings.
- Sign-in history and active sessions.
- Tasks you created or were assigned, and your comments and uploaded files.
- Your API tokens' names and creation dates (never the tokens themselves).
- Your billing history, if you're a workspace Owner.

## What's not included
Content that belongs to the workspace rather than to you — other people's tasks and comments,
workspace settings — is controlled by the workspace Owner, who acts as data controller. Owners
export it with **Settings → General → Export workspace**.

## Other GDPR requests
- **Correct** your data: edit it yourself in **Settings → Account → Profile**.
- **Delete** your data: see *Delete your account and data retention*.
- **Other requests** (restriction, objection, questions about processing): contact support
  and choose **Privacy request**. We answer within 30 days.

If you're a client who was added as a guest and can't sign in, contact the workspace Owner
first — they control the workspace data.
""",
    },
    {
        "title": "Delete your account and data retention",
        "category": "data-privacy",
        "summary": "How to delete your account or workspace and what happens to your data.",
        "beta": False,
        "body": """\
## Delete your personal account
1. Go to **Settings → Account → Privacy → Delete account**.
2. Enter your password and type `DELETE` to confirm.

If you're the **only Owner** of a workspace, you must first transfer ownership or delete that
workspace; otherwise you'll see "Transfer ownership before deleting your account".

### Comments and tasks you created
When you delete your personal account, tasks and comments you created in a workspace stay
there, attributed to "Deleted user", because they belong to the workspace. Ask the workspace
Owner to delete them if you want them removed.

## Delete a workspace
Only Owners can do this:

1. Cancel any paid subscription in **Settings → Billing**.
2. Go to **Settings → General → Delete workspace**.
3. Type the workspace name and confirm with your password.

All members lose access immediately.

## The 30-day grace period
Deleted accounts and workspaces are kept, inaccessible, for **30 days**. During that time you
can restore them by signing in and clicking **Restore** (accounts) or by contacting support
(workspaces). After 30 days, deletion is **permanent** and cannot be undone — not even by
support.

Data is then removed from backups within a further 35 days, as backups expire.

## What we keep
- Invoices and payment records, for up to 10 years, as required by tax law.
- Minimal security logs (for example sign-in attempts) for 12 months.
""",
    },
    {
        "title": "Import from CSV or Trello",
        "category": "data-privacy-import-export",
        "summary": "How to import tasks into Flowboard from a CSV file or a Trello board.",
        "beta": False,
        "body": """\
## Import a CSV file
1. Open the project you want to import into, or create an empty one.
2. Click **⋯ → Import → CSV**.
3. Upload a `.csv` file encoded in UTF-8, with a header row. Limits: **10,000 rows** and
   **20 MB** per file.
4. Map your columns to Flowboard fields: Title (required), Description, Section, Assignee
   email, Due date, Labels, Priority and custom fields.
5. Click **Preview**, check the first rows, then **Import**.

Dates should use `YYYY-MM-DD`. Multiple labels go in one cell, separated by commas. Assignees
are matched by email; unknown emails leave the task unassigned.

## Import from Trello
1. Go to **Settings → Import → Trello** and click **Connect Trello**.
2. Choose one or more boards.
3. Map Trello members to Flowboard members.
4. Click **Start import**.

Lists become sections, cards become tasks, checklists become subtasks, and labels, due dates,
comments and attachments up to 100 MB are copied. Power-up data isn't imported.

Large boards can take up to an hour. You'll get an email when the import finishes.

## Common errors
- "Missing required column: Title" — map a column to Title.
- "Row 57: invalid date" — fix the date format in that row.
- "File is not valid UTF-8" — re-save the file as *CSV UTF-8* in your spreadsheet app.

Imports can be undone within 24 hours from **⋯ → Import → History → Undo import**.
""",
    },
    {
        "title": "Export tasks to CSV",
        "category": "data-privacy-import-export",
        "summary": "How to export tasks to CSV, the 50,000-row limit and fixing export timeouts.",
        "beta": False,
        "body": """\
## Export a project or view
1. Open a project, or **My tasks**, in **List** view.
2. Apply any filters you want — the export includes only the tasks currently shown.
3. Click **⋯ → Export → CSV**.
4. Choose the fields and whether to include completed and archived tasks.
5. Click **Export**. Small exports download immediately; larger ones are emailed to you as a
   link valid for **7 days**.

The file is UTF-8 with a header row, one task per row. Subtasks appear as separate rows with
a `Parent ID` column. Comments and attachments are not included in CSV exports.

### Opening the file in a spreadsheet
If accented characters look wrong, import the file as UTF-8 instead of double-clicking it.

## Limits
- One CSV export can contain up to **50,000 rows**. Larger exports fail with "Export failed:
  too many rows (limit 50,000)".
- Exports that take longer than 10 minutes stop with "Export timed out".

## If the export is too large or times out
1. Filter by **Created date** or **Due date** and export in smaller ranges (for example one
   quarter at a time).
2. Untick completed or archived tasks if you don't need them.
3. Export one project at a time instead of a cross-project view.
4. Remove wide fields such as **Description** if you don't need them.
5. For regular large exports, use the REST API (`/v1/tasks` with `updated_since`) instead.

## Full workspace export
Owners can export everything — including comments and attachments — as a ZIP of JSON files
from **Settings → General → Export workspace**. There's no row limit; large workspaces can take
several hours, and you get an email when it's ready.
""",
    },
]
