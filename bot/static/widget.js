/* tsunagu chat widget: embed with one tag, e.g.
 *   <script src="https://desk.example.jp/widget.js" defer></script>
 * Options (data attributes on the script tag):
 *   data-open="true"        open the chat at once
 *   data-exit-url="https://…" where すぐに閉じる goes (default: a search site)
 *   data-transport="http"   never try the WebSocket (networks that block it); otherwise the
 *                           widget falls back to HTTP by itself after failed connects and
 *                           keeps trying the WebSocket in the background (5 s … 5 min)
 * Plain JS, no build step, no third-party code. */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__tsunaguWidget) return;
  window.__tsunaguWidget = true;

  var base = new URL(script.src, window.location.href);
  var ORIGIN = base.origin;
  var WS_URL = (base.protocol === "https:" ? "wss://" : "ws://") + base.host + "/ws/chat";
  var EXIT_URL = script.getAttribute("data-exit-url") || "https://www.google.co.jp/";
  var START_OPEN = script.getAttribute("data-open") === "true";
  var KEY_SESSION = "tsunagu.session";
  var KEY_LOG = "tsunagu.log";
  var KEY_OUTBOX = "tsunagu.outbox";
  var KEY_SEEN = "tsunagu.seen";
  var KEY_TAB = "tsunagu.tab"; // which copy of the conversation this tab holds (see "tabs")
  var KEY_LIVE = "tsunagu.live"; // set while a page of this tab runs the widget
  var MAX_CHARS = 2000;
  var API_URL = ORIGIN + "/api/chat";
  var WS_FAILS_BEFORE_HTTP = 3; // sockets that closed before "ready", in a row
  var WS_READY_TIMEOUT = 10000; // a socket that opens but never answers counts as failed
  // On the HTTP fallback the socket is tried again after 5 s, then 10, 20 … up to 5 min, each
  // wait jittered into its upper half: a network that only hiccuped is back on the socket
  // within seconds, while a proxy that always blocks sockets costs one refused request per
  // few minutes per tab, and tabs that fell back together (a server restart) spread out.
  var PROBE_FIRST = 5000;
  var PROBE_MAX = 300000;
  var WS_STABLE = 60000; // a socket that lasted this long resets the probe backoff
  var TAB_WAIT = 250; // how long a tab with a stored conversation asks whether another has it
  var NOTE_DUPLICATE =
    "これまでの会話は、別のタブで続いています。このタブでは新しく相談を始められます。";

  // -- storage (sessionStorage: gone when the tab closes) ---------------------------------
  function load(key, fallback) {
    try {
      var raw = window.sessionStorage.getItem(key);
      return raw ? JSON.parse(raw) : fallback;
    } catch (e) {
      return fallback;
    }
  }
  function save(key, value) {
    try {
      window.sessionStorage.setItem(key, JSON.stringify(value));
    } catch (e) {
      /* storage full or blocked: the chat still works for this page */
    }
  }
  function clearStored(all) {
    try {
      var keys = [KEY_SESSION, KEY_LOG, KEY_OUTBOX, KEY_SEEN];
      if (all) keys.push(KEY_TAB, KEY_LIVE);
      keys.forEach(function (k) {
        window.sessionStorage.removeItem(k);
      });
    } catch (e) {
      /* ignore */
    }
  }

  var session = load(KEY_SESSION, null);
  var log = load(KEY_LOG, []); // rendered entries, so a reload shows the conversation
  var outbox = load(KEY_OUTBOX, []); // frames not yet answered; resent after reconnecting
  // The last counselor-side push shown ({epoch, seq}): the server sends what came after it.
  var seen = load(KEY_SEEN, { epoch: null, seq: 0 });

  // -- DOM helpers ------------------------------------------------------------------------
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function newId() {
    var bytes = new Uint8Array(9);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      })
      .join("");
  }

  var css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = ORIGIN + "/widget.css";
  document.head.appendChild(css);

  var root = el("div", "tsg-root");
  var launcher = el("button", "tsg-launcher", "相談する");
  launcher.type = "button";
  launcher.setAttribute("aria-controls", "tsg-panel");
  launcher.setAttribute("aria-expanded", "false");

  var panel = el("section", "tsg-panel");
  panel.id = "tsg-panel";
  panel.setAttribute("aria-label", "つなぐ 相談チャット");
  panel.hidden = true;

  var header = el("div", "tsg-header");
  var title = el("h2", "tsg-title", "つなぐ 相談チャット");
  var exitBtn = el("button", "tsg-exit", "すぐに閉じる");
  exitBtn.type = "button";
  exitBtn.setAttribute("aria-label", "すぐに閉じる（このページを別のサイトに切り替えます）");
  var clearBtn = el("button", "tsg-clear", "会話を消す");
  clearBtn.type = "button";
  var minBtn = el("button", "tsg-min", "×");
  minBtn.type = "button";
  minBtn.setAttribute("aria-label", "チャットをたたむ");
  var tools = el("div", "tsg-tools");
  tools.appendChild(clearBtn);
  tools.appendChild(minBtn);
  header.appendChild(title);
  header.appendChild(exitBtn);
  header.appendChild(tools);

  var logEl = el("div", "tsg-log");
  logEl.setAttribute("role", "log");
  logEl.setAttribute("aria-live", "polite");
  logEl.setAttribute("aria-label", "会話");
  logEl.tabIndex = 0;

  var typing = el("div", "tsg-typing");
  typing.setAttribute("role", "status");
  typing.hidden = true;
  typing.appendChild(el("span", "tsg-sr", "返事を書いています"));
  for (var i = 0; i < 3; i++) typing.appendChild(el("span", "tsg-dot"));

  var status = el("div", "tsg-status");
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");

  var form = el("form", "tsg-form");
  var inputId = "tsg-input";
  var label = el("label", "tsg-sr", "メッセージ");
  label.htmlFor = inputId;
  var input = el("textarea", "tsg-input");
  input.id = inputId;
  input.rows = 2;
  input.maxLength = MAX_CHARS;
  input.placeholder = "気になっていることを書いてください（Enterで送信）";
  var sendBtn = el("button", "tsg-send", "送信");
  sendBtn.type = "submit";
  form.appendChild(label);
  form.appendChild(input);
  form.appendChild(sendBtn);

  panel.appendChild(header);
  panel.appendChild(logEl);
  panel.appendChild(typing);
  panel.appendChild(status);
  panel.appendChild(form);
  root.appendChild(launcher);
  root.appendChild(panel);

  // -- rendering ---------------------------------------------------------------------------
  function scrollDown() {
    logEl.scrollTop = logEl.scrollHeight;
  }

  function renderUser(text) {
    var row = el("div", "tsg-msg tsg-user");
    row.appendChild(el("span", "tsg-sr", "あなた："));
    row.appendChild(el("p", "tsg-bubble", text));
    logEl.appendChild(row);
  }

  function renderCard(item) {
    var card = el("article", "tsg-card");
    card.setAttribute("data-kind", item.kind || "");
    var head = el("h3", "tsg-card-name", item.name);
    if (item.sample) {
      var badge = el("span", "tsg-badge", "サンプル");
      badge.title = "例として載せている架空の窓口です";
      head.appendChild(badge);
    }
    card.appendChild(head);
    if (item.description) card.appendChild(el("p", "tsg-card-desc", item.description));
    if (item.reason) card.appendChild(el("p", "tsg-card-reason", item.reason));
    if (item.hours) {
      var hours = "受付：" + item.hours;
      if (item.open_now === true) hours += "（いま受付中）";
      card.appendChild(el("p", "tsg-card-hours", hours));
    }
    var links = el("div", "tsg-card-links");
    if (item.phone && item.tel) {
      var tel = el("a", "tsg-tel", "電話 " + item.phone);
      tel.href = "tel:" + item.tel;
      links.appendChild(tel);
    }
    if (item.url && /^https?:\/\//.test(item.url)) {
      var web = el("a", "tsg-web", "ウェブサイト");
      web.href = item.url;
      web.target = "_blank";
      web.rel = "noopener noreferrer";
      links.appendChild(web);
    }
    if (links.childNodes.length) card.appendChild(links);
    if (item.notes) card.appendChild(el("p", "tsg-card-notes", item.notes));
    return card;
  }

  function renderBot(m, live) {
    var row = el("div", "tsg-msg tsg-bot tsg-" + m.type);
    row.appendChild(el("span", "tsg-sr", "つなぐ："));
    if (m.type === "text" || m.type === "end") {
      row.appendChild(el("p", "tsg-bubble", m.text));
    } else if (m.type === "handoff") {
      var note = el("p", "tsg-bubble tsg-notice", m.text);
      note.setAttribute("data-status", m.status || "");
      row.appendChild(note);
    } else if (m.type === "choices") {
      row.appendChild(el("p", "tsg-bubble", m.text));
      var group = el("div", "tsg-choices");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "選択肢");
      (m.items || []).forEach(function (item) {
        var b = el("button", "tsg-choice", item.label);
        b.type = "button";
        b.disabled = !live;
        b.addEventListener("click", function () {
          Array.prototype.forEach.call(group.querySelectorAll("button"), function (x) {
            x.disabled = true;
          });
          send({ type: "postback", postback: item.postback }, item.label);
        });
        group.appendChild(b);
      });
      row.appendChild(group);
    } else if (m.type === "resources") {
      if (m.intro) row.appendChild(el("p", "tsg-bubble", m.intro));
      var list = el("div", "tsg-cards");
      (m.items || []).forEach(function (item) {
        list.appendChild(renderCard(item));
      });
      row.appendChild(list);
    } else {
      return;
    }
    logEl.appendChild(row);
  }

  function renderNote(text) {
    var row = el("div", "tsg-msg tsg-note");
    row.appendChild(el("p", "tsg-bubble", text));
    logEl.appendChild(row);
  }

  function renderEntry(entry, live) {
    if (entry.who === "user") renderUser(entry.text);
    else if (entry.who === "note") renderNote(entry.text);
    else renderBot(entry.m, live);
  }

  function remember(entry) {
    log.push(entry);
    if (log.length > 200) log = log.slice(-200);
    save(KEY_LOG, log);
  }

  function showMessages(messages) {
    var ended = false;
    messages.forEach(function (m) {
      if (m.type === "end") ended = true;
    });
    // The conversation was deleted: nothing of it stays in this tab either, and a fresh
    // anonymous session starts (the old one belongs to the deleted conversation).
    if (ended) startClean(null, 1000);
    messages.forEach(function (m) {
      renderBot(m, true);
      if (!ended) remember({ who: "bot", m: m });
    });
    scrollDown();
  }

  // A counselor-side push (numbered): shown once, however often (and by whichever transport)
  // it arrives.
  function showPush(epoch, seq, messages) {
    if (epoch === seen.epoch && seq <= seen.seq) return;
    seen = { epoch: epoch, seq: seq };
    save(KEY_SEEN, seen);
    showMessages(messages || []);
  }

  function pending(id) {
    for (var k = 0; k < outbox.length; k++) if (outbox[k].id === id) return true;
    return false;
  }

  function answered(id) {
    outbox = outbox.filter(function (f) {
      return f.id !== id;
    });
    save(KEY_OUTBOX, outbox);
  }

  // -- connection --------------------------------------------------------------------------
  // Turns go over one transport at a time ("ws" or "http"); every frame waits in the outbox
  // (sessionStorage) until its reply arrives, and a reply is shown only while its frame is
  // still waiting, so a resend over another transport never shows an answer twice.
  var FORCE_HTTP = script.getAttribute("data-transport") === "http";
  var mode = FORCE_HTTP ? "http" : "ws";
  var ws = null; // the socket turns go over (mode "ws")
  var ready = false; // ws has answered hello
  var readyAt = 0;
  var retry = 0;
  var retryTimer = null;
  var wsFailures = 0;
  var greetedHere = false; // this page already had the greeting for the current session
  var probe = { socket: null, timer: null, step: 0 }; // background socket tries on HTTP
  root.setAttribute("data-transport", mode);

  function setMode(next) {
    mode = next;
    root.setAttribute("data-transport", mode);
  }

  function setStatus(text) {
    status.textContent = text || "";
  }

  function hello() {
    var frame = { type: "hello", session: session, epoch: seen.epoch, seq: seen.seq };
    // Reconnecting or switching transports within this page: the conversation is on screen,
    // so the server sends only what was missed, not the greeting again.
    if (session && greetedHere && log.length) frame.greet = false;
    return frame;
  }

  function openSocket(isProbe) {
    var socket;
    try {
      socket = new WebSocket(WS_URL);
    } catch (e) {
      return null;
    }
    var asked = session;
    var answeredHello = false;
    var readyTimer = null;
    socket.addEventListener("open", function () {
      socket.send(JSON.stringify(hello()));
      readyTimer = window.setTimeout(function () {
        if (!answeredHello) socket.close();
      }, WS_READY_TIMEOUT);
    });
    socket.addEventListener("message", function (ev) {
      var data;
      try {
        data = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      if (data.type === "ready" && !answeredHello) {
        answeredHello = true;
        if (isProbe) adoptProbe(socket, data, asked);
        else if (socket === ws) onReady(data);
        return;
      }
      if (socket === ws) onFrame(data); // else a socket left behind: not ours to show
    });
    socket.addEventListener("close", function () {
      if (readyTimer) window.clearTimeout(readyTimer);
      if (socket === probe.socket) {
        probe.socket = null;
        scheduleProbe();
        return;
      }
      if (socket !== ws) return; // closed on purpose (a fresh start) or replaced
      var wasReady = ready;
      ws = null;
      ready = false;
      if (wasReady && Date.now() - readyAt >= WS_STABLE) probe.step = 0;
      if (mode === "http") return;
      if (wasReady) scheduleReconnect();
      else wsFailed();
    });
    socket.addEventListener("error", function () {
      /* close follows */
    });
    return socket;
  }

  function adoptSession(value) {
    if (value !== session) renewTab(); // a new conversation is no copy of any other tab's
    session = value;
    save(KEY_SESSION, session);
  }

  function onReady(data) {
    ready = true;
    readyAt = Date.now();
    retry = 0;
    wsFailures = 0;
    setStatus("");
    adoptSession(data.session);
    greetedHere = true;
    resendOutbox();
  }

  // Everything not yet answered goes (again) over the socket, in order; the server answers a
  // repeated id with the reply it already gave instead of running the turn twice.
  function resendOutbox() {
    if (!ws || !ready || http.busy) return; // a turn on its way over HTTP finishes first
    outbox.forEach(function (frame) {
      ws.send(JSON.stringify(frame));
    });
    if (outbox.length) typing.hidden = false;
  }

  function onFrame(data) {
    if (data.type === "typing") {
      typing.hidden = false;
      scrollDown();
    } else if (data.type === "reply" && typeof data.seq === "number") {
      showPush(data.epoch, data.seq, data.messages);
    } else if (data.type === "reply") {
      if (data.id) {
        if (!pending(data.id)) return; // already answered (over HTTP) or left behind
        answered(data.id);
      }
      if (!outbox.length) typing.hidden = true;
      showMessages(data.messages || []);
    } else if (data.type === "error") {
      if (data.id) {
        if (!pending(data.id)) return;
        answered(data.id);
      }
      typing.hidden = true;
      setStatus("送れませんでした：" + (data.message || data.code));
    }
  }

  function wsFailed() {
    wsFailures += 1;
    if (wsFailures >= WS_FAILS_BEFORE_HTTP) {
      // Sockets seem blocked on this network (some offices and proxies do): talk over HTTP,
      // and keep trying the socket in the background.
      wsFailures = 0;
      setMode("http");
      startHttp();
    } else {
      scheduleReconnect();
    }
  }

  function connect() {
    if (!tab.settled) return; // connects once this tab knows the conversation is its own
    if (mode === "http") {
      startHttp();
      return;
    }
    if (ws) return;
    ready = false;
    ws = openSocket(false);
    if (!ws) wsFailed();
  }

  function scheduleReconnect() {
    if (retryTimer) return;
    retry = Math.min(retry + 1, 5);
    var delay = Math.min(15000, 500 * Math.pow(2, retry));
    if (outbox.length || !panel.hidden) setStatus("接続が切れました。つなぎ直しています…");
    retryTimer = window.setTimeout(function () {
      retryTimer = null;
      connect();
    }, delay);
  }

  // -- back from HTTP to the socket ----------------------------------------------------------
  function scheduleProbe() {
    if (FORCE_HTTP || mode !== "http" || probe.timer || probe.socket) return;
    var ceiling = Math.min(PROBE_MAX, PROBE_FIRST * Math.pow(2, probe.step));
    probe.step = Math.min(probe.step + 1, 16);
    var delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    probe.timer = window.setTimeout(tryProbe, delay);
  }

  function tryProbe() {
    if (probe.timer) window.clearTimeout(probe.timer);
    probe.timer = null;
    // Not while HTTP itself is starting: httpReady() schedules the next try.
    if (mode !== "http" || probe.socket || !http.ready || !session) return;
    probe.socket = openSocket(true);
    if (!probe.socket) scheduleProbe();
  }

  function adoptProbe(socket, data, asked) {
    probe.socket = null;
    if (mode !== "http" || asked !== session || data.session !== session) {
      socket.close(); // the conversation changed meanwhile (deleted, a fresh start)
      scheduleProbe();
      return;
    }
    // Sockets work again: the long poll stops (its answer, if any, is ignored: the socket
    // sends every push after the last one shown); a turn still on its way over HTTP is
    // answered there, then the rest of the outbox follows over the socket, in order.
    setMode("ws");
    stopHttp();
    ws = socket;
    onReady(data);
  }

  window.addEventListener("online", function () {
    // The browser says the network is back: try the socket now, not at the next backoff step.
    if (probe.timer) tryProbe();
  });

  // -- HTTP fallback: POST /api/chat for turns, a long poll for counselor messages -----------
  var http = {
    started: false,
    ready: false,
    busy: false,
    polling: false,
    pollTimer: null,
    poller: null,
    gen: 0, // bumped when HTTP stops or starts over: late answers to older asks are ignored
  };

  function post(body, signal) {
    // text/plain keeps it a "simple" request: no CORS preflight when embedded elsewhere.
    var init = {
      method: "POST",
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    };
    if (signal) init.signal = signal;
    return window.fetch(API_URL, init).then(function (r) {
      return r.json().then(function (data) {
        return { ok: r.ok, status: r.status, data: data || {} };
      });
    });
  }

  function stopHttp() {
    http.gen += 1;
    http.started = false;
    http.ready = false;
    http.polling = false;
    if (http.pollTimer) window.clearTimeout(http.pollTimer);
    http.pollTimer = null;
    if (http.poller) http.poller.abort();
    http.poller = null;
    // http.busy stays: a turn already sent is answered, and what follows waits for it.
  }

  function startHttp() {
    if (mode !== "http" || http.started || !tab.settled) return;
    http.started = true;
    if (session && greetedHere && log.length) {
      httpReady(); // the conversation is on screen: no greeting again
      return;
    }
    var gen = http.gen;
    function failed() {
      if (gen !== http.gen) return;
      http.started = false;
      if (outbox.length || !panel.hidden) setStatus("接続が切れました。つなぎ直しています…");
      window.setTimeout(startHttp, 3000);
    }
    post({ session: session }).then(function (res) {
      if (gen !== http.gen) return;
      if (!res.ok) {
        failed();
        return;
      }
      adoptSession(res.data.session);
      greetedHere = true;
      showMessages(res.data.messages || []);
      httpReady();
    }, failed);
  }

  function httpReady() {
    setStatus("");
    http.ready = true;
    flushHttp();
    schedulePoll(0);
    scheduleProbe();
  }

  function httpBody(frame) {
    var body = { session: session, id: frame.id };
    if (frame.type === "message") body.text = frame.text;
    else if (frame.type === "postback") body.postback = frame.postback;
    else body.action = "delete";
    return body;
  }

  function afterHttpTurn() {
    if (mode === "http") flushHttp();
    else resendOutbox(); // switched to the socket while this turn was on its way
  }

  function flushHttp() {
    if (mode !== "http" || http.busy || !http.ready || !outbox.length) return;
    http.busy = true;
    var frame = outbox[0];
    typing.hidden = false;
    post(httpBody(frame)).then(
      function (res) {
        http.busy = false;
        if (pending(frame.id)) {
          answered(frame.id);
          if (!outbox.length) typing.hidden = true;
          if (res.ok) {
            setStatus("");
            showMessages(res.data.messages || []);
          } else {
            var err = res.data.error || {};
            setStatus("送れませんでした：" + (err.message || err.code || res.status));
          }
        }
        afterHttpTurn();
      },
      function () {
        // Kept in the outbox and sent again with the same id (the server answers it once).
        http.busy = false;
        if (mode !== "http") {
          resendOutbox();
          return;
        }
        setStatus("接続が切れました。つなぎ直しています…");
        window.setTimeout(flushHttp, 3000);
      }
    );
  }

  function poll() {
    if (mode !== "http" || http.polling || !http.ready || !session) return;
    http.polling = true;
    var gen = http.gen;
    var asked = session;
    var ctl = window.AbortController ? new window.AbortController() : null;
    http.poller = ctl;
    var body = { session: asked, action: "updates", epoch: seen.epoch, seq: seen.seq, wait: 20 };
    post(body, ctl && ctl.signal).then(
      function (res) {
        if (gen !== http.gen) return; // HTTP stopped meanwhile: the socket has taken over
        http.polling = false;
        http.poller = null;
        if (res.ok && asked === session) {
          (res.data.updates || []).forEach(function (u) {
            showPush(res.data.epoch, u.seq, u.messages);
          });
        }
        schedulePoll(res.ok ? 300 : 5000);
      },
      function () {
        if (gen !== http.gen) return;
        http.polling = false;
        http.poller = null;
        schedulePoll(5000);
      }
    );
  }

  function schedulePoll(delay) {
    if (http.pollTimer) return;
    http.pollTimer = window.setTimeout(function () {
      http.pollTimer = null;
      poll();
    }, delay);
  }

  // -- a fresh start (deleted conversation, or a duplicated tab) -----------------------------
  function dropConnection() {
    if (retryTimer) window.clearTimeout(retryTimer);
    retryTimer = null;
    retry = 0;
    wsFailures = 0;
    var old = ws;
    ws = null;
    ready = false;
    if (old) old.close();
    var probing = probe.socket;
    probe.socket = null;
    if (probing) probing.close();
    stopHttp();
  }

  function startClean(note, delay) {
    dropConnection();
    logEl.textContent = "";
    log = [];
    outbox = [];
    seen = { epoch: null, seq: 0 };
    session = null;
    greetedHere = false;
    clearStored();
    typing.hidden = true;
    setStatus("");
    if (note) {
      renderNote(note);
      remember({ who: "note", text: note });
    }
    if (!tab.settled) return; // the page goes on once the tab question is settled
    // After a deletion the confirmation stands alone for a moment before the new greeting.
    window.setTimeout(function () {
      if (mode === "http") startHttp();
      else if (!panel.hidden) connect();
    }, delay || 0);
  }

  // -- tabs ----------------------------------------------------------------------------------
  // "Duplicate tab" (and window.open) copies sessionStorage: two tabs would then speak as the
  // same anonymous person, each getting part of the conversation. Each page holding a copy of
  // the conversation announces the copy's id on a BroadcastChannel; when two live pages hold
  // the same copy, the newer one (opened or brought back later) lets go of it and starts a
  // new conversation of its own with a short note; the older one goes on as if nothing
  // happened.
  var tab = {
    id: load(KEY_TAB, null),
    nonce: newId(), // this page view
    since: Date.now(), // when this page started holding its copy
    settled: false,
    active: true,
    channel: null,
    waiters: [],
  };
  var inherited = !!(session || log.length || outbox.length);
  // A reload or the next page of the same tab finds no live mark (pagehide removed it): no
  // other page can hold its copy, so it shows the conversation without waiting. A copy made
  // while a page was running carries the mark.
  var maybeCopied = load(KEY_LIVE, null) !== null;
  function markLive(live) {
    try {
      if (live) window.sessionStorage.setItem(KEY_LIVE, "1");
      else window.sessionStorage.removeItem(KEY_LIVE);
    } catch (e) {
      /* storage blocked: every load waits for the answer instead */
    }
  }

  function settleTab() {
    if (tab.settled) return;
    tab.settled = true;
    var waiting = tab.waiters;
    tab.waiters = [];
    waiting.forEach(function (fn) {
      fn();
    });
  }

  function announce(kind) {
    if (!tab.channel) return;
    try {
      tab.channel.postMessage({ kind: kind, tab: tab.id, from: tab.nonce, since: tab.since });
    } catch (e) {
      /* a closed channel: nothing to tell */
    }
  }

  function newerThan(other) {
    return tab.since > other.since || (tab.since === other.since && tab.nonce < other.from);
  }

  function renewTab() {
    tab.id = newId();
    tab.since = Date.now();
    save(KEY_TAB, tab.id);
  }

  // The tab id changes with every new session, so two pages sharing an id share a copy of
  // one conversation: the newer one forgets its copy (never the server's conversation).
  function letGo() {
    renewTab();
    if (session || log.length || outbox.length) startClean(NOTE_DUPLICATE);
    settleTab();
  }

  function claimTab() {
    if (!tab.id) {
      tab.id = newId();
      inherited = false; // nothing was copied from anywhere
    }
    save(KEY_TAB, tab.id);
    markLive(true);
    if (!window.BroadcastChannel) {
      settleTab(); // older browsers: no way to tell, the widget works as before
      return;
    }
    try {
      tab.channel = new window.BroadcastChannel("tsunagu.tabs");
    } catch (e) {
      settleTab();
      return;
    }
    tab.channel.onmessage = function (ev) {
      var d = ev.data || {};
      if (!tab.active || d.tab !== tab.id || d.from === tab.nonce) return;
      if (typeof d.since !== "number") return;
      if (newerThan(d)) letGo();
      else if (d.kind === "claim") announce("held"); // tell the newer page it is a copy
    };
    announce("claim");
    // Only a copied conversation needs an answer (~10 ms, measured) before it is shown; a
    // later answer still makes the newer page let go.
    if (inherited && maybeCopied) window.setTimeout(settleTab, TAB_WAIT);
    else settleTab();
  }

  window.addEventListener("pagehide", function () {
    tab.active = false; // reloading or leaving: the next page of this tab takes the copy
    markLive(false);
  });
  function comeBack() {
    // Back from the back/forward cache or a frozen state: whoever used the copy meanwhile
    // keeps it.
    tab.active = true;
    markLive(true);
    tab.since = Date.now();
    announce("claim");
  }
  window.addEventListener("pageshow", function (ev) {
    if (ev.persisted) comeBack();
  });
  document.addEventListener("resume", comeBack);

  claimTab();

  function send(frame, shown) {
    frame.id = newId();
    if (shown) {
      renderUser(shown);
      remember({ who: "user", text: shown });
    }
    outbox.push(frame);
    save(KEY_OUTBOX, outbox);
    typing.hidden = false;
    scrollDown();
    if (mode === "http") {
      if (http.ready) flushHttp();
      else startHttp();
    } else if (ws && ready) {
      if (!http.busy) ws.send(JSON.stringify(frame)); // else it follows the HTTP turn
    } else {
      connect();
    }
  }

  // -- actions -----------------------------------------------------------------------------
  function submit() {
    if (!tab.settled) return; // a moment after loading; the text stays in the box
    var text = input.value.trim();
    if (!text) return;
    if (text.length > MAX_CHARS) text = text.slice(0, MAX_CHARS);
    input.value = "";
    send({ type: "message", text: text }, text);
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    submit();
  });

  input.addEventListener("keydown", function (ev) {
    // Japanese IME: Enter confirms the conversion while composing; it must not send.
    if (ev.isComposing || ev.keyCode === 229) return;
    if (ev.key === "Enter" && !ev.shiftKey) {
      ev.preventDefault();
      submit();
    }
  });

  clearBtn.addEventListener("click", function () {
    if (session) {
      send({ type: "delete" }, null);
    } else {
      logEl.textContent = "";
      log = [];
      clearStored();
    }
  });

  exitBtn.addEventListener("click", function () {
    var old = session;
    clearStored(true);
    if (old && navigator.sendBeacon) {
      try {
        navigator.sendBeacon(
          ORIGIN + "/api/chat",
          JSON.stringify({ session: old, action: "delete" })
        );
      } catch (e) {
        /* leaving matters more */
      }
    }
    window.location.replace(EXIT_URL);
  });

  function setOpen(open) {
    panel.hidden = !open;
    launcher.hidden = open;
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      connect();
      input.focus();
      scrollDown();
    } else {
      launcher.focus();
    }
  }
  launcher.addEventListener("click", function () {
    setOpen(true);
  });
  minBtn.addEventListener("click", function () {
    setOpen(false);
  });
  panel.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") setOpen(false);
  });

  function showLog() {
    log.forEach(function (entry) {
      renderEntry(entry, false);
    });
    // Buttons of the last bot message stay usable after a reload.
    var last = log.length ? log[log.length - 1] : null;
    if (last && last.who === "bot" && last.m.type === "choices") {
      logEl.removeChild(logEl.lastChild);
      renderBot(last.m, true);
    }
  }

  function mount() {
    document.body.appendChild(root);
    var go = function () {
      // letGo() may already have emptied the log and left the note.
      if (!logEl.childNodes.length) showLog();
      if (START_OPEN && panel.hidden) setOpen(true);
      else if (!panel.hidden) connect();
      scrollDown();
    };
    if (tab.settled) go();
    else tab.waiters.push(go);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mount);
  } else {
    mount();
  }
})();
