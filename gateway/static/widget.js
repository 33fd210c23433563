/* widget.js - Parley's chat widget for a customer's website. Include it with

     <script src="https://parley.example.com/widget.js" data-tenant="acme" data-project="SUP"
             data-token="JWT"></script>

   or leave data-token out and call ParleyWidget.init({tenant, project, token}) when the page
   has the token (the auto-login JWT that the website signs with the Jira project's secret key:
   email, displayName, iat, exp). Without a token (init without one, or data-anonymous="yes")
   the customer is an anonymous visitor, where the project allows it, and keeps the token the
   gateway hands out for the tab. It talks to ws(s)://<the host widget.js came from>/ws
   (init's `url` overrides it) in client protocol v1 (proto/PROTOCOL.md): hello, availability,
   conversation.start, messages with acks, typing and read indicators. After a lost connection
   it reconnects with backoff, resumes the conversation with after_comment and resends what
   Jira has not acknowledged (same ids, so never twice). The conversation survives a reload of
   the tab (sessionStorage). Text only ever reaches the page through textContent. Plain DOM in
   a shadow root (the site's styles do not leak in), no dependencies, no build step. */
(function () {
  "use strict";

  var script = document.currentScript;
  var RETRY_MIN_MS = 500, RETRY_MAX_MS = 30000, TYPING_EVERY_MS = 2000, TYPING_SHOWN_MS = 4000;
  var RESEND_MS = 3000;
  /* errors after which resending the same frame cannot help */
  var FINAL_ERRORS = {forbidden: 1, bad_frame: 1, too_long: 1};

  var CSS =
    ":host{all:initial;font:14px/1.4 system-ui,sans-serif;color:#172b4d}" +
    ".launch{position:fixed;right:20px;bottom:20px;border:0;border-radius:24px;padding:12px 18px;" +
    "background:#0052cc;color:#fff;font:inherit;cursor:pointer;box-shadow:0 2px 8px #0004}" +
    ".dot{display:inline-block;width:8px;height:8px;border-radius:4px;margin-right:8px;" +
    "background:#999}" +
    ".dot.on{background:#36b37e}" +
    ".panel{position:fixed;right:20px;bottom:76px;width:340px;height:460px;display:flex;" +
    "flex-direction:column;background:#fff;border-radius:8px;box-shadow:0 4px 20px #0005;" +
    "overflow:hidden}" +
    ".head{background:#0052cc;color:#fff;padding:10px 14px}.head b{display:block}" +
    ".head small{opacity:.85}.log{flex:1;overflow-y:auto;padding:10px;background:#f4f5f7}" +
    ".msg{max-width:80%;margin:6px 0;padding:6px 10px;border-radius:10px;white-space:pre-wrap;" +
    "word-wrap:break-word;background:#fff;box-shadow:0 1px 1px #0001}" +
    ".msg.me{margin-left:auto;background:#deebff}.who{display:block;font-size:11px;color:#6b778c}" +
    ".state{display:block;font-size:11px;color:#6b778c;text-align:right}" +
    ".state.failed{color:#de350b}.note{font-size:12px;color:#6b778c;text-align:center;margin:6px}" +
    ".typing{font-size:12px;color:#6b778c;height:18px;padding:0 12px}" +
    "form{display:flex;border-top:1px solid #dfe1e6}textarea{flex:1;border:0;padding:10px;" +
    "resize:none;font:inherit;height:44px}button.send{border:0;background:none;color:#0052cc;" +
    "font:inherit;font-weight:bold;padding:0 14px;cursor:pointer}[hidden]{display:none!important}";

  /* An element with a class and, optionally, text (as text, never as markup). */
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function randomId(prefix) {
    var bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    return prefix + Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  /* Comment ids are decimal strings: compares them as numbers of any length. */
  function commentAfter(a, b) {
    if (!b) return !!a;
    if (!a) return false;
    return a.length !== b.length ? a.length > b.length : a > b;
  }

  /* The claims of a JWT, unverified (only to tell customers apart in sessionStorage). */
  function claimsOf(token) {
    try {
      var part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part));
    } catch (e) {
      return {};
    }
  }

  function defaultUrl() {
    var base = script && script.src ? new URL(script.src) : new URL(location.href);
    return (base.protocol === "https:" ? "wss://" : "ws://") + base.host + "/ws";
  }

  function Widget(options) {
    this.tenant = options.tenant;
    this.project = options.project;
    this.token = options.token;
    this.url = options.url || defaultUrl();
    this.title = options.title || "Chat with us";
    this.anonymous = !this.token;
    this.storeKey = "parley:" + this.tenant + ":" + this.project + ":" +
      (this.anonymous ? "visitor" : claimsOf(this.token).email || "");
    this.saved = this.load();  // {conv, first, issue, outbox: [{id, text}], visitor}
    if (this.anonymous && this.saved.visitor) this.token = this.saved.visitor;
    this.shown = {};           // "m:<id>" or "c:<comment>" -> {node, state, comment, mine}
    this.lastComment = "";     // the last comment id seen in this page
    this.lastAgentComment = "";
    this.ready = false;        // welcomed on the current socket
    this.resuming = false;
    this.retries = 0;
    this.stopped = false;
    this.typingSentMs = 0;
    this.build();
    if (this.saved.first) /* the first message is the issue's summary, not a comment */
      this.showMine("first", this.saved.first, this.saved.issue ? "sent" : "sending…");
    this.connect();
  }

  Widget.prototype.load = function () {
    try {
      var saved = JSON.parse(sessionStorage.getItem(this.storeKey) || "{}");
      saved.outbox = saved.outbox || [];
      return saved;
    } catch (e) {
      return {outbox: []};
    }
  };

  Widget.prototype.save = function () {
    try {
      sessionStorage.setItem(this.storeKey, JSON.stringify(this.saved));
    } catch (e) { /* storage off: the conversation lasts as long as the page */ }
  };

  Widget.prototype.build = function () {
    var self = this;
    var host = el("div");
    document.body.appendChild(host);
    var root = host.attachShadow ? host.attachShadow({mode: "open"}) : host;
    root.appendChild(el("style", null, CSS));
    this.launch = el("button", "launch");
    this.dot = el("span", "dot");
    this.launch.appendChild(this.dot);
    this.launch.appendChild(document.createTextNode(this.title));
    this.panel = el("div", "panel");
    this.panel.hidden = true;
    var head = el("div", "head");
    head.appendChild(el("b", null, this.title));
    this.status = el("small", null, "Connecting…");
    head.appendChild(this.status);
    this.log = el("div", "log");
    this.typing = el("div", "typing");
    var form = el("form");
    this.input = el("textarea");
    this.input.placeholder = "Type a message…";
    this.input.maxLength = 32767;
    var send = el("button", "send", "Send");
    send.type = "submit";
    form.appendChild(this.input);
    form.appendChild(send);
    this.panel.appendChild(head);
    this.panel.appendChild(this.log);
    this.panel.appendChild(this.typing);
    this.panel.appendChild(form);
    root.appendChild(this.panel);
    root.appendChild(this.launch);

    this.launch.addEventListener("click", function () {
      self.panel.hidden = !self.panel.hidden;
      if (!self.panel.hidden) {
        self.input.focus();
        self.markRead();
      }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.submit();
    });
    this.input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        self.submit();
      }
    });
    this.input.addEventListener("input", function () { self.sendTyping(); });
    document.addEventListener("visibilitychange", function () { self.markRead(); });
  };

  // --- the socket

  Widget.prototype.connect = function () {
    var self = this;
    var ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.note("Cannot reach the chat server.");
      return;
    }
    this.ws = ws;
    this.ready = false;
    ws.onopen = function () {
      var hello = {type: "hello", tenant: self.tenant, project: self.project, kind: "customer"};
      if (self.token) hello.token = self.token; /* none: an anonymous visitor */
      self.send(hello);
    };
    ws.onmessage = function (event) {
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (frame && typeof frame.type === "string") self.receive(frame);
    };
    ws.onclose = function () {
      if (self.ws !== ws) return;
      self.ws = null;
      self.ready = false;
      if (self.stopped) return;
      var delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * Math.pow(2, self.retries++));
      delay = delay / 2 + Math.random() * delay / 2;
      self.status.textContent = "Reconnecting…";
      setTimeout(function () { self.connect(); }, delay);
    };
  };

  Widget.prototype.send = function (frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  };

  Widget.prototype.receive = function (f) {
    var handler = this["on_" + f.type.replace(".", "_")];
    if (handler) handler.call(this, f);
  };

  Widget.prototype.on_welcome = function (f) {
    this.ready = true;
    this.retries = 0;
    if (f.token) { /* a new visitor's token, to come back as the same visitor */
      this.token = this.saved.visitor = f.token;
      this.save();
    }
    if (this.saved.conv) {
      /* resume: the same conversation id, and what we missed after the last comment seen */
      this.resuming = true;
      this.send({type: "conversation.start", id: this.saved.conv, text: this.saved.first,
                 after_comment: this.lastComment || "0"});
    }
  };

  Widget.prototype.on_availability = function (f) {
    this.dot.className = f.available ? "dot on" : "dot";
    this.status.textContent = f.available ? "We're online: an agent will answer shortly."
      : "We're away: leave a message and we'll get back to you.";
    this.launch.hidden = f.visible === false && !this.saved.conv && this.panel.hidden;
  };

  Widget.prototype.on_conversation_started = function (f) {
    if (f.id !== this.saved.conv) return;
    this.saved.issue = f.issue;
    this.save();
    this.setState(this.shown["m:first"], "sent");
    if (!this.resuming) this.flush();
  };

  Widget.prototype.on_resumed = function (f) {
    if (f.issue !== this.saved.issue) return;
    this.resuming = false;
    if (f.error) this.note("Some earlier messages could not be loaded (" + f.error + ").");
    this.flush();
  };

  Widget.prototype.on_message = function (f) {
    if (f.issue !== this.saved.issue) return;
    var key = f.id ? "m:" + f.id : "c:" + f.comment;
    var mine = f.author_kind === "customer"; /* ours, from another tab or the transcript */
    var item = this.shown[key] || (f.comment && this.shown["c:" + f.comment]) ||
      this.show(key, mine ? "You" : (f.author_name || "Agent"), String(f.text || ""), mine);
    if (f.comment) this.gotComment(item, f.comment);
    if (!mine) this.typing.textContent = "";
    this.markRead();
  };

  Widget.prototype.on_ack = function (f) {
    this.saved.outbox = this.saved.outbox.filter(function (m) { return m.id !== f.id; });
    this.save();
    this.gotComment(this.shown["m:" + f.id], f.comment);
  };

  Widget.prototype.on_persisted = function (f) {
    this.gotComment(this.shown["m:" + f.id], f.comment);
    this.markRead();
  };

  Widget.prototype.on_typing = function (f) {
    if (f.issue !== this.saved.issue || f.author_kind !== "agent") return;
    var self = this;
    this.typing.textContent = "Agent is typing…";
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(function () { self.typing.textContent = ""; }, TYPING_SHOWN_MS);
  };

  Widget.prototype.on_read = function (f) {
    if (f.issue !== this.saved.issue || f.author_kind !== "agent") return;
    for (var key in this.shown) {
      var item = this.shown[key];
      if (item.mine && item.comment && !commentAfter(item.comment, f.comment))
        this.setState(item, "read");
    }
  };

  Widget.prototype.on_error = function (f) {
    if (f.code === "unauthorized") {
      this.stopped = true;
      if (this.anonymous) { /* the visitor's token expired: a reload starts afresh */
        this.saved = {outbox: []};
        this.save();
      }
      this.status.textContent = "Chat unavailable: please reload the page.";
      this.note("Could not sign you in (" + (f.message || f.code) + ").");
      if (this.ws) this.ws.close();
      return;
    }
    var item = f.id && this.shown["m:" + f.id];
    var starting = f.id && f.id === this.saved.conv && !this.saved.issue;
    if (item && FINAL_ERRORS[f.code]) {
      this.saved.outbox = this.saved.outbox.filter(function (m) { return m.id !== f.id; });
      this.save();
      this.setState(item, "not sent: " + (f.message || f.code), true);
    } else if (item || starting) {
      this.resendLater(); /* Jira or the bus is busy: the same ids again, a little later */
    } else {
      this.note(f.message || f.code);
    }
  };

  // --- what the customer does

  Widget.prototype.submit = function () {
    var text = this.input.value.trim();
    if (!text) return;
    this.input.value = "";
    if (!this.saved.conv) {
      /* the first message starts the conversation (it becomes the issue's summary) */
      this.saved.conv = randomId("w-");
      this.saved.first = text;
      this.save();
      this.showMine("first", text, "sending…");
      if (this.ready) /* else on_welcome sends it */
        this.send({type: "conversation.start", id: this.saved.conv, text: text});
      return;
    }
    var message = {id: randomId("m-"), text: text};
    this.saved.outbox.push(message);
    this.save();
    this.showMine(message.id, text, "sending…");
    if (this.ready && this.saved.issue && !this.resuming)
      this.send({type: "message", id: message.id, issue: this.saved.issue, text: text});
  };

  /* Sends every message Jira has not acknowledged yet, in order (after a reconnect: again;
     after a reload they are shown here, below the transcript). */
  Widget.prototype.flush = function () {
    var self = this;
    this.saved.outbox.forEach(function (m) {
      self.showMine(m.id, m.text, "sending…");
      self.send({type: "message", id: m.id, issue: self.saved.issue, text: m.text});
    });
  };

  /* After an error that may pass: the conversation start or the outbox again, once. */
  Widget.prototype.resendLater = function () {
    var self = this;
    if (this.resendTimer) return;
    this.resendTimer = setTimeout(function () {
      self.resendTimer = null;
      if (!self.ready || self.resuming) return; /* a reconnect resends anyway */
      if (!self.saved.issue)
        self.send({type: "conversation.start", id: self.saved.conv, text: self.saved.first});
      else
        self.flush();
    }, RESEND_MS);
  };

  Widget.prototype.sendTyping = function () {
    var now = Date.now();
    if (!this.ready || !this.saved.issue || now - this.typingSentMs < TYPING_EVERY_MS) return;
    this.typingSentMs = now;
    this.send({type: "typing", issue: this.saved.issue});
  };

  /* Tells the agent what the customer has read: the last agent comment, when it is in view. */
  Widget.prototype.markRead = function () {
    if (!this.ready || !this.lastAgentComment || this.panel.hidden ||
        document.visibilityState !== "visible" || this.readSent === this.lastAgentComment) return;
    this.readSent = this.lastAgentComment;
    this.send({type: "read", issue: this.saved.issue, comment: this.lastAgentComment});
  };

  // --- the message list

  Widget.prototype.show = function (key, who, text, mine) {
    var node = el("div", mine ? "msg me" : "msg");
    if (!mine) node.appendChild(el("span", "who", who));
    node.appendChild(document.createTextNode(text));
    var state = el("span", "state");
    node.appendChild(state);
    this.log.appendChild(node);
    this.log.scrollTop = this.log.scrollHeight;
    var item = {node: node, state: state, comment: "", mine: mine};
    this.shown[key] = item;
    return item;
  };

  Widget.prototype.showMine = function (id, text, state) {
    var item = this.shown["m:" + id] || this.show("m:" + id, "You", text, true);
    this.setState(item, state);
    return item;
  };

  Widget.prototype.setState = function (item, text, failed) {
    if (!item || item.state.textContent === "read") return;
    item.state.textContent = text;
    item.state.className = failed ? "state failed" : "state";
  };

  /* Jira has item's message as comment (item may be NULL: not shown here). */
  Widget.prototype.gotComment = function (item, comment) {
    if (commentAfter(comment, this.lastComment)) this.lastComment = comment;
    if (!item) return;
    if (!item.mine && commentAfter(comment, this.lastAgentComment))
      this.lastAgentComment = comment;
    item.comment = comment;
    this.shown["c:" + comment] = item;
    if (item.mine) this.setState(item, "sent");
  };

  Widget.prototype.note = function (text) {
    this.log.appendChild(el("div", "note", text));
    this.log.scrollTop = this.log.scrollHeight;
  };

  // --- start

  var widget = null;
  window.ParleyWidget = {
    /* Starts the widget once: options {tenant, project, token?, url?, title?}. */
    init: function (options) {
      if (widget) return widget;
      if (!options || !options.tenant || !options.project)
        throw new Error("ParleyWidget.init needs tenant and project (and a token)");
      var start = function () { widget = widget || new Widget(options); };
      if (document.body) start();
      else document.addEventListener("DOMContentLoaded", start);
      return true;
    }
  };
  /* the script tag starts it when it carries a token, or data-anonymous="yes" */
  if (script && (script.dataset.token || script.dataset.anonymous === "yes")) {
    window.ParleyWidget.init({tenant: script.dataset.tenant, project: script.dataset.project,
                              token: script.dataset.token, url: script.dataset.url});
  }
})();
