// What the stream and WebSocket test pages share: the messages they received, in order, and a
// wait for a count of them. The test reads window.received through DevTools. Each entry gets
// `at`, when it arrived in milliseconds since the epoch on the page's clock, which the latency
// benchmark (bench/push_latency.py) compares with the publisher's send time.
window.received = [];
const waiting = [];
window.record = (entry) => {
  entry.at = performance.timeOrigin + performance.now();
  window.received.push(entry);
  for (const wait of waiting.splice(0)) {
    wait();
  }
};
// Resolves once `count` messages arrived.
window.receivedAll = (count) => new Promise((resolve) => {
  const check = () => window.received.length >= count ? resolve(window.received.length)
                                                      : waiting.push(check);
  check();
});
