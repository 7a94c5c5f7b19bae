// Refreshes the live numbers of the queue page from /live every two seconds.
"use strict";
function setText(id, value) {
  const cell = document.getElementById(id);
  if (cell) { cell.textContent = String(value); }
}
async function refresh() {
  try {
    const answer = await fetch("/live", { credentials: "same-origin", cache: "no-store" });
    if (!answer.ok) { return; }
    const live = await answer.json();
    setText("live-rate", live.per_minute);
    setText("live-taken", new Date(live.taken * 1000).toLocaleTimeString());
    for (const q of live.queues) {
      setText("live-" + q.queue + "-messages", q.messages);
      setText("live-" + q.queue + "-bytes", q.bytes);
    }
  } catch (e) {
    // The console may be restarting: try again at the next tick.
  }
}
setInterval(refresh, 2000);
refresh();
