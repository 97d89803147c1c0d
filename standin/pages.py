"""HTML of the stand-in site, as Python strings.

Rendered by `standin.web`. The selectors here are the contract the scraper's site adapter relies on
(`#login-form`, `[data-testid=profile-name]`, `#send-form`, `[data-testid=send-status]`, ...): change them
only together with that adapter. Sending a message needs JavaScript on purpose (the send form has no
action and posts JSON with `fetch`), so only a real browser can send through the site.

Every message item carries ``data-client-ref`` when its send passed a ``client_ref`` (the reference a worker
sends so it can find its own message after an interrupted send); seed messages have none.

`RENDERER_CRASH_JS` is what a `crash_creators` page runs to kill its Chromium renderer; see
`standin.RENDERER_CRASH_LAUNCH_ARGS` for why it is cheap.
"""

from __future__ import annotations

from html import escape

from standin.content import Profile, ThreadMessage, iso

# Exhaust the V8 heap, which Chromium treats as a
# fatal out-of-memory in the renderer. With `--js-flags=--max-old-space-size=256` this takes well under a
# second; without the flag it still crashes but only after filling the default heap (seconds, GiBs).
HEAP_CRASH_JS = """
(function () {
  var hoard = [];
  for (;;) { hoard.push(new Array(1000000).fill(1.5)); }
})();
"""

# Launch flags for browsers that visit crash pages: they cap the V8 heap so that the heap method crashes in well
# under a second and with little memory. Harmless for normal pages: the stand-in's pages use a few MiB of JS heap.
RENDERER_CRASH_LAUNCH_ARGS: tuple[str, ...] = ("--js-flags=--max-old-space-size=256",)

# The heap method is the one used: measured on Chromium 156 with the flag above, it crashes the renderer of every
# page kind (profile, inbox, thread, media) in 0.3-0.5 s, while the deep layout left the thread page (and, run
# after load, every page) alive for over 15 s, which made a crash look like a timeout.
RENDERER_CRASH_JS = HEAP_CRASH_JS

_STYLE = """
body { font-family: sans-serif; margin: 2rem; max-width: 48rem; }
nav a { margin-right: 1rem; }
.message[data-sender=creator] { text-align: right; }
.error { color: #b00; }
"""

SEND_FORM_JS = """
(function () {
  var form = document.getElementById("send-form");
  var input = document.getElementById("message-input");
  var button = document.getElementById("send-button");
  var clientRef = document.getElementById("client-ref");
  var status = document.querySelector("[data-testid=send-status]");
  var list = document.getElementById("messages");

  function showError(code, retryAfter) {
    status.setAttribute("data-status", String(code));
    if (retryAfter !== null) { status.setAttribute("data-retry-after", retryAfter); }
    status.textContent = "error";
  }

  function appendMessage(id, sentAt, text, ref) {
    var item = document.createElement("li");
    item.className = "message";
    item.setAttribute("data-testid", "message");
    item.setAttribute("data-message-id", id);
    item.setAttribute("data-sender", "creator");
    item.setAttribute("data-sent-at", sentAt);
    if (ref) { item.setAttribute("data-client-ref", ref); }
    item.textContent = text;
    list.appendChild(item);
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    var text = input.value;
    button.disabled = true;
    ["data-message-id", "data-status", "data-retry-after"].forEach(function (name) {
      status.removeAttribute(name);
    });
    status.textContent = "sending";
    try {
      var response = await fetch(form.getAttribute("data-endpoint"), {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({text: text, client_ref: clientRef.value || null})
      });
      if (response.ok) {
        var body = await response.json();
        appendMessage(body.id, body.sent_at, text, clientRef.value);
        input.value = "";
        status.setAttribute("data-message-id", body.id);
        status.textContent = "sent";
      } else {
        showError(response.status, response.headers.get("Retry-After"));
      }
    } catch (err) {
      showError(0, null);
    } finally {
      button.disabled = false;
    }
  });
})();
"""


def head(title: str) -> str:
    """The document up to and including `<body>`; a hanging page sends only this."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} - Standin</title><style>{_STYLE}</style></head>\n<body>\n"
    )


def document(title: str, body: str, *, creator_id: str | None = None, crash: bool = False) -> str:
    nav = ""
    if creator_id is not None:
        nav = (
            f'<nav data-testid="nav" data-creator-id="{escape(creator_id)}">'
            f'<a href="/u/{escape(creator_id)}">Profile</a>'
            '<a href="/inbox">Inbox</a><a href="/media">Media</a>'
            "</nav>\n"
        )
    crash_script = f"<script>{RENDERER_CRASH_JS}</script>\n" if crash else ""
    return f"{head(title)}{nav}<main>\n{body}\n</main>\n{crash_script}</body></html>\n"


def login_page(next_path: str, *, error: str | None = None, username: str = "") -> str:
    error_html = f'<p class="error" data-testid="login-error">{escape(error)}</p>\n' if error else ""
    body = (
        "<h1>Log in</h1>\n"
        f"{error_html}"
        '<form id="login-form" method="post" action="/login">\n'
        f'<input type="hidden" name="next" value="{escape(next_path)}">\n'
        "<label>Username "
        f'<input name="username" autocomplete="username" value="{escape(username)}"></label>\n'
        '<label>Password <input name="password" type="password" autocomplete="current-password"></label>\n'
        '<button id="login-button" type="submit">Log in</button>\n'
        "</form>"
    )
    return document("Log in", body)


def profile_page(profile: Profile, *, viewer: str, crash: bool) -> str:
    body = (
        f'<article data-testid="profile" data-creator-id="{escape(profile.creator_id)}">\n'
        f'<h1 data-testid="profile-name">{escape(profile.name)}</h1>\n'
        f'<p data-testid="profile-bio">{escape(profile.bio)}</p>\n'
        "<dl>\n"
        f'<dt>Posts</dt><dd data-testid="posts-count">{profile.posts}</dd>\n'
        f'<dt>Followers</dt><dd data-testid="followers-count">{profile.followers}</dd>\n'
        f'<dt>Likes</dt><dd data-testid="likes-count">{profile.likes}</dd>\n'
        "</dl>\n</article>"
    )
    return document(profile.name, body, creator_id=viewer, crash=crash)


def inbox_page(creator_id: str, fans: list[str], *, crash: bool) -> str:
    links = "\n".join(
        f'<li><a data-testid="thread-link" data-user-id="{escape(fan)}" href="/inbox/{escape(fan)}">'
        f"{escape(fan)}</a></li>"
        for fan in fans
    )
    body = f'<h1>Inbox</h1>\n<ul id="threads">\n{links}\n</ul>'
    return document("Inbox", body, creator_id=creator_id, crash=crash)


def _message_item(message: ThreadMessage) -> str:
    ref = "" if message.client_ref is None else f' data-client-ref="{escape(message.client_ref)}"'
    return (
        f'<li class="message" data-testid="message" data-message-id="{escape(message.id)}" '
        f'data-sender="{escape(message.sender)}" data-sent-at="{iso(message.sent_at)}"{ref}>'
        f"{escape(message.text)}</li>"
    )


def thread_page(creator_id: str, user_id: str, messages: list[ThreadMessage], *, client_ref: str, crash: bool) -> str:
    items = "\n".join(_message_item(m) for m in messages)
    body = (
        f'<h1>Conversation with <span data-testid="thread-user">{escape(user_id)}</span></h1>\n'
        f'<ol id="messages" data-user-id="{escape(user_id)}">\n{items}\n</ol>\n'
        f'<form id="send-form" data-endpoint="/web/threads/{escape(user_id)}/messages">\n'
        f'<input type="hidden" id="client-ref" value="{escape(client_ref)}">\n'
        '<textarea id="message-input" rows="3" required></textarea>\n'
        '<button id="send-button" type="submit">Send</button>\n'
        '<span data-testid="send-status" aria-live="polite"></span>\n'
        "</form>\n"
        f"<script>{SEND_FORM_JS}</script>"
    )
    return document(f"Chat with {user_id}", body, creator_id=creator_id, crash=crash)


def media_page(creator_id: str, media: list[tuple[str, int]], *, crash: bool) -> str:
    links = "\n".join(
        f'<li><a data-testid="media-link" data-media-id="{escape(media_id)}" data-size="{size}" '
        f'href="/media/{escape(media_id)}/download">{escape(media_id)}.bin</a></li>'
        for media_id, size in media
    )
    body = f'<h1>Media</h1>\n<ul id="media">\n{links}\n</ul>'
    return document("Media", body, creator_id=creator_id, crash=crash)


def error_page(status: int, message: str) -> str:
    body = f'<h1 data-testid="error" data-status="{status}">{escape(message)}</h1>'
    return document(f"Error {status}", body)
