/* agent.js - the agent console of agent.html: one websocket to ws(s)://<this host>/ws in
   client protocol v1 (proto/PROTOCOL.md) as kind "agent", with the token from the URL fragment
   (#tenant=demo&token=JWT; `parleyctl token agent` makes one). Lists the conversation.new
   events of the agent's projects, joins a conversation by issue key (its history comes back
   from Jira with after_comment "0"), sends messages (kept until Jira acknowledges them, resent
   with the same ids after a reconnect), shows acks, typing and read indicators, and marks what
   the agent has read. Reconnects with backoff and rejoins every conversation after the last
   comment seen. Text only ever reaches the page through textContent. No dependencies. */
(function () {
  "use strict";

  var RETRY_MIN_MS = 500, RETRY_MAX_MS = 30000, TYPING_EVERY_MS = 2000, TYPING_SHOWN_MS = 4000;
  var FINAL_ERRORS = {forbidden: 1, bad_frame: 1, too_long: 1};

  var params = new URLSearchParams(location.hash.slice(1));
  var tenant = params.get("tenant") || "demo";
  var token = params.get("token");
  var url = params.get("url") ||
    (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";

  var $ = function (id) { return document.getElementById(id); };
  var conversations = {}; // issue -> conversation (see open())
  var current = null;     // the conversation shown
  var pendingJoins = [];  // issues asked for, not yet answered (joined or refused)
  var ws = null, ready = false, retries = 0, stopped = false, me = "", typingSentMs = 0;
  var typingTimer = null;

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

  /* Comment ids are decimal strings: true when a comes after b. */
  function commentAfter(a, b) {
    if (!b) return !!a;
    if (!a) return false;
    return a.length !== b.length ? a.length > b.length : a > b;
  }

  function send(frame) {
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function note(text, conv) {
    var log = conv ? conv.log : $("log");
    log.appendChild(el("p", "note", text));
    log.scrollTop = log.scrollHeight;
  }

  // --- conversations

  /* The conversation of issue, made (listed under Joined) when new. */
  function open(issue) {
    var conv = conversations[issue];
    if (conv) return conv;
    conv = {issue: issue, log: el("div"), shown: {}, lastComment: "", lastCustomerComment: "",
            readSent: "", outbox: [], unread: 0, resuming: false, li: el("li")};
    conv.label = el("span", null, issue);
    conv.badge = el("span", "badge");
    conv.badge.hidden = true;
    conv.li.appendChild(conv.label);
    conv.li.appendChild(conv.badge);
    conv.li.addEventListener("click", function () { select(conv); });
    $("joined").appendChild(conv.li);
    conversations[issue] = conv;
    return conv;
  }

  function select(conv) {
    if (current) current.li.className = "";
    current = conv;
    conv.li.className = "current";
    conv.unread = 0;
    conv.badge.hidden = true;
    var log = $("log");
    while (log.firstChild) log.removeChild(log.firstChild);
    log.appendChild(conv.log);
    log.scrollTop = log.scrollHeight;
    $("typing").textContent = "";
    $("text").disabled = false;
    $("text").focus();
    markRead(conv);
  }

  function join(issue) {
    issue = issue.trim().toUpperCase();
    if (!issue) return;
    var known = conversations[issue];
    var conv = open(issue);
    var fresh = $("new-" + issue);
    if (fresh) fresh.parentNode.removeChild(fresh);
    select(conv);
    if (!known) rejoin(conv);
  }

  /* Asks to follow conv, with what was missed after the last comment seen ("0": all). */
  function rejoin(conv) {
    if (!ready) return; /* welcome rejoins every conversation */
    conv.resuming = true;
    pendingJoins.push(conv.issue);
    send({type: "join", issue: conv.issue, after_comment: conv.lastComment || "0"});
  }

  function drop(issue, why) {
    var conv = conversations[issue];
    if (!conv) return;
    conv.li.parentNode.removeChild(conv.li);
    delete conversations[issue];
    if (current === conv) {
      current = null;
      $("text").disabled = true;
      var log = $("log");
      while (log.firstChild) log.removeChild(log.firstChild);
    }
    note(issue + ": " + why);
  }

  function flush(conv) {
    conv.outbox.forEach(function (m) {
      send({type: "message", id: m.id, issue: conv.issue, text: m.text});
    });
  }

  function show(conv, key, who, text, mine) {
    var node = el("div", mine ? "msg me" : "msg");
    node.appendChild(el("span", "who", who));
    node.appendChild(document.createTextNode(text));
    var state = el("span", "state");
    node.appendChild(state);
    conv.log.appendChild(node);
    if (conv === current) $("log").scrollTop = $("log").scrollHeight;
    var item = {state: state, comment: "", mine: mine};
    conv.shown[key] = item;
    return item;
  }

  function setState(item, text, failed) {
    if (!item || item.state.textContent === "read") return;
    item.state.textContent = text;
    item.state.className = failed ? "state failed" : "state";
  }

  /* Jira has item's message as comment (item may be NULL). */
  function gotComment(conv, item, comment) {
    if (commentAfter(comment, conv.lastComment)) conv.lastComment = comment;
    if (!item) return;
    item.comment = comment;
    conv.shown["c:" + comment] = item;
    if (item.mine) setState(item, "sent");
    else if (commentAfter(comment, conv.lastCustomerComment)) conv.lastCustomerComment = comment;
  }

  /* Tells the customer the agent read up to the last customer comment, when it is in view. */
  function markRead(conv) {
    if (!ready || conv !== current || document.visibilityState !== "visible" ||
        !conv.lastCustomerComment || conv.readSent === conv.lastCustomerComment) return;
    conv.readSent = conv.lastCustomerComment;
    send({type: "read", issue: conv.issue, comment: conv.lastCustomerComment});
  }

  // --- frames from the gateway

  var on = {
    welcome: function (f) {
      ready = true;
      retries = 0;
      me = f.account;
      $("who").textContent = "Signed in as " + f.account + " (" + tenant + ")";
      $("status").textContent = "";
      pendingJoins = [];
      for (var issue in conversations) rejoin(conversations[issue]);
    },
    "conversation.new": function (f) {
      if (conversations[f.issue] || $("new-" + f.issue)) return;
      var li = el("li");
      li.id = "new-" + f.issue;
      li.appendChild(el("span", null, f.issue));
      li.appendChild(el("span", null, "join"));
      li.addEventListener("click", function () { join(f.issue); });
      $("new").appendChild(li);
    },
    joined: function (f) {
      pendingJoins = pendingJoins.filter(function (i) { return i !== f.issue; });
    },
    resumed: function (f) {
      var conv = conversations[f.issue];
      if (!conv) return;
      conv.resuming = false;
      if (f.error) note("Earlier messages could not be loaded (" + f.error + ").", conv);
      flush(conv);
      markRead(conv);
    },
    message: function (f) {
      var conv = conversations[f.issue];
      if (!conv) return;
      var key = f.id ? "m:" + f.id : "c:" + f.comment;
      var mine = f.author_kind === "agent" && f.author === me;
      var who = mine ? "You" : f.author_kind === "agent" ? "Agent " + f.author
        : (f.author_name || "Customer");
      var item = conv.shown[key] || (f.comment && conv.shown["c:" + f.comment]) ||
        show(conv, key, who, String(f.text || ""), mine);
      if (f.comment) gotComment(conv, item, f.comment);
      if (f.author_kind === "customer" && conv === current) $("typing").textContent = "";
      if (!mine && conv !== current) {
        conv.unread++;
        conv.badge.textContent = String(conv.unread);
        conv.badge.hidden = false;
      }
      markRead(conv);
    },
    ack: function (f) {
      var conv = conversations[f.issue];
      if (!conv) return;
      conv.outbox = conv.outbox.filter(function (m) { return m.id !== f.id; });
      gotComment(conv, conv.shown["m:" + f.id], f.comment);
    },
    persisted: function (f) {
      var conv = conversations[f.issue];
      if (!conv) return;
      gotComment(conv, conv.shown["m:" + f.id], f.comment);
      markRead(conv);
    },
    typing: function (f) {
      if (!current || f.issue !== current.issue || f.author_kind !== "customer") return;
      $("typing").textContent = "Customer is typing…";
      clearTimeout(typingTimer);
      typingTimer = setTimeout(function () { $("typing").textContent = ""; }, TYPING_SHOWN_MS);
    },
    read: function (f) {
      var conv = conversations[f.issue];
      if (!conv || f.author_kind !== "customer") return;
      for (var key in conv.shown) {
        var item = conv.shown[key];
        if (item.mine && item.comment && !commentAfter(item.comment, f.comment))
          setState(item, "read");
      }
    },
    error: function (f) {
      if (f.code === "unauthorized") {
        stopped = true;
        $("status").textContent = "Not signed in: " + (f.message || f.code);
        if (ws) ws.close();
        return;
      }
      /* a refused join has no id: it answers the oldest join still waiting */
      if (f.code === "forbidden" && !f.id && /projects/.test(f.message || "") &&
          pendingJoins.length) {
        drop(pendingJoins.shift(), f.message);
        return;
      }
      for (var issue in conversations) {
        var conv = conversations[issue];
        var item = f.id && conv.shown["m:" + f.id];
        if (!item) continue;
        if (FINAL_ERRORS[f.code]) {
          conv.outbox = conv.outbox.filter(function (m) { return m.id !== f.id; });
          setState(item, "not sent: " + (f.message || f.code), true);
        } else {
          setTimeout(function () { if (ready && !conv.resuming) flush(conv); }, 3000);
        }
        return;
      }
      note((f.message || f.code), current);
    }
  };

  // --- the socket

  function connect() {
    var socket;
    try {
      socket = new WebSocket(url);
    } catch (e) {
      $("status").textContent = "Cannot reach the gateway.";
      return;
    }
    ws = socket;
    ready = false;
    socket.onopen = function () {
      send({type: "hello", tenant: tenant, kind: "agent", token: token});
    };
    socket.onmessage = function (event) {
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (frame && Object.prototype.hasOwnProperty.call(on, frame.type)) on[frame.type](frame);
    };
    socket.onclose = function () {
      if (ws !== socket) return;
      ws = null;
      ready = false;
      if (stopped) return;
      var delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * Math.pow(2, retries++));
      delay = delay / 2 + Math.random() * delay / 2;
      $("status").textContent = "Reconnecting…";
      setTimeout(connect, delay);
    };
  }

  // --- what the agent does

  $("join").addEventListener("submit", function (event) {
    event.preventDefault();
    join($("issue").value);
    $("issue").value = "";
  });
  function reply() {
    var text = $("text").value.trim();
    if (!text || !current) return;
    $("text").value = "";
    var message = {id: randomId("a-"), text: text};
    current.outbox.push(message);
    setState(show(current, "m:" + message.id, "You", text, true), "sending…");
    if (ready && !current.resuming)
      send({type: "message", id: message.id, issue: current.issue, text: text});
  }
  $("reply").addEventListener("submit", function (event) {
    event.preventDefault();
    reply();
  });
  $("text").addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      reply();
    }
  });
  $("text").addEventListener("input", function () {
    var now = Date.now();
    if (!ready || !current || now - typingSentMs < TYPING_EVERY_MS) return;
    typingSentMs = now;
    send({type: "typing", issue: current.issue});
  });
  document.addEventListener("visibilitychange", function () { if (current) markRead(current); });

  if (token) {
    connect();
  } else {
    $("missing").hidden = false;
    $("status").textContent = "";
  }
})();
