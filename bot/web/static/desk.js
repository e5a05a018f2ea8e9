// carebot approval desk: live length check, waiting timers and keyboard shortcuts. No dependencies.
"use strict";

(function () {
  // X weighs text: any URL counts 23, code points above U+10FF (CJK, emoji) count 2. A close
  // approximation of twitter-text; the server checks the exact rule before anything is approved.
  var URL = /https?:\/\/\S+|\b[a-z0-9.-]+\.(?:com|org|net|io|co|me|app|dev)(?:\/\S*)?/gi;

  function codePoints(text) { return Array.from(text).length; }

  function weighted(text) {
    var total = 0, last = 0, match;
    URL.lastIndex = 0;
    while ((match = URL.exec(text)) !== null) {
      total += plainWeight(text.slice(last, match.index)) + 23;
      last = match.index + match[0].length;
    }
    return total + plainWeight(text.slice(last));
  }

  function plainWeight(text) {
    var total = 0;
    for (var ch of text) {
      var point = ch.codePointAt(0);
      var light = point <= 0x10ff || (point >= 0x2000 && point <= 0x200d) ||
        (point >= 0x2010 && point <= 0x201f) || (point >= 0x2032 && point <= 0x2037);
      total += light ? 1 : 2;
    }
    return total;
  }

  function measure(area) {
    var text = area.value.trim();
    var used = area.dataset.counting === "x" ? weighted(text) : codePoints(text);
    return { used: used, limit: parseInt(area.dataset.limit, 10), empty: text.length === 0 };
  }

  function updateCount(area) {
    // Each text box has its own count (a reply, and its private follow-up); Approve needs all within limits.
    var m = measure(area);
    // The count is the box's next sibling, or inside it (a row that also holds a badge).
    var next = area.nextElementSibling;
    var count = next && (next.classList.contains("count") ? next : next.querySelector(".count"));
    if (!count) return;
    count.querySelector(".used").textContent = String(m.used);
    var over = m.used > m.limit;
    count.classList.toggle("over", over);
    count.title = over ? (m.used - m.limit) + " over the limit" : (m.limit - m.used) + " left";
    var form = area.form;
    var button = form.querySelector("button[type=submit]");
    if (button) {
      button.disabled = Array.prototype.some.call(form.querySelectorAll("textarea"), function (box) {
        var b = measure(box);
        return b.used > b.limit || b.empty;
      });
    }
  }

  function since(iso) {
    var seconds = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 60) return seconds + "s";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m";
    if (seconds < 86400) {
      var minutes = Math.floor(seconds % 3600 / 60);
      return Math.floor(seconds / 3600) + "h" + (minutes < 10 ? "0" : "") + minutes + "m";
    }
    return Math.floor(seconds / 86400) + "d" + Math.floor(seconds % 86400 / 3600) + "h";
  }

  function tick() {
    document.querySelectorAll(".waiting[data-since]").forEach(function (el) {
      el.textContent = "waiting " + since(el.dataset.since);
    });
  }

  var items = [];
  var current = -1;

  function select(index, scroll) {
    if (!items.length) return;
    index = Math.max(0, Math.min(items.length - 1, index));
    if (current >= 0 && items[current]) items[current].classList.remove("selected");
    current = index;
    items[current].classList.add("selected");
    try { sessionStorage.setItem("carebot.selected", String(current)); } catch (e) { /* private mode */ }
    if (scroll) items[current].scrollIntoView({ block: "nearest" });
  }

  function within(selector) {
    return current >= 0 ? items[current].querySelector(selector) : null;
  }

  function submit(form) {
    if (!form) return;
    var button = form.querySelector("button[type=submit]");
    if (!button || button.disabled) return;  // e.g. a failed reply has no Approve button
    if (form.reportValidity && !form.reportValidity()) return;
    form.requestSubmit ? form.requestSubmit(button) : form.submit();
  }

  function typing(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" ||
      (el.tagName === "INPUT" && el.type !== "hidden" && el.type !== "submit"));
  }

  function onKey(event) {
    var target = event.target;
    if (event.key === "Escape" && typing(target)) { target.blur(); return; }
    if (target.tagName === "TEXTAREA" && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      submit(target.form);
      return;
    }
    if (typing(target) || event.ctrlKey || event.metaKey || event.altKey) return;
    var action = {
      j: function () { select(current + 1, true); },
      k: function () { select(current - 1, true); },
      a: function () { submit(within("form.approve")); },
      e: function () { var t = within("textarea[name=text]:not([readonly])"); if (t) { t.focus(); t.setSelectionRange(t.value.length, t.value.length); } },
      s: function () { var s = within("select[name=situation]"); if (s) s.focus(); },
      r: function () { var r = within("input[name=reason]"); if (r) r.focus(); },
      t: function () { submit(within("form.retry")); },
      h: function () { window.location.href = "/history"; },
      "?": function () { var d = document.getElementById("help"); if (d && d.showModal) d.open ? d.close() : d.showModal(); }
    }[event.key];
    if (action) { event.preventDefault(); action(); }
  }

  function start() {
    items = Array.prototype.slice.call(document.querySelectorAll(".queue > .item"));
    document.querySelectorAll("form.approve textarea, form.case-reply textarea").forEach(function (area) {
      area.addEventListener("input", function () { updateCount(area); });
      updateCount(area);
    });
    // A saved reply goes into the reply box, to be edited before sending.
    document.querySelectorAll("select.saved").forEach(function (select) {
      select.addEventListener("change", function () {
        var area = document.getElementById(select.dataset.target);
        if (!area || !select.value) return;
        area.value = area.value.trim() ? area.value.trim() + " " + select.value : select.value;
        select.value = "";
        updateCount(area);
        area.focus();
      });
    });
    items.forEach(function (item, index) {
      item.addEventListener("focusin", function () { select(index, false); });
      item.addEventListener("click", function () { select(index, false); });
    });
    // A form is sent once: a second click or key press while the first is on its way does nothing.
    document.querySelectorAll("form[method=post]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (form.dataset.sent) { event.preventDefault(); return; }
        form.dataset.sent = "1";
      });
    });
    if (items.length) {
      var saved = 0;
      try { saved = parseInt(sessionStorage.getItem("carebot.selected") || "0", 10) || 0; } catch (e) { saved = 0; }
      select(Math.min(saved, items.length - 1), false);
    }
    tick();
    setInterval(tick, 30000);
    // New mentions arrive all the time: reload every minute unless the person is in the middle of something.
    setInterval(function () {
      // data-hold: the page answers a refused POST; reloading it would send the form again.
      var busy = typing(document.activeElement) || document.querySelector("dialog[open], [data-hold]") ||
        Array.prototype.some.call(document.querySelectorAll("textarea, input[name=reason]"), function (el) {
          return el.value !== el.defaultValue;
        });
      if (!busy) window.location.reload();
    }, 60000);
    document.addEventListener("keydown", onKey);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
