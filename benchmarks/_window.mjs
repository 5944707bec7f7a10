// The measuring window shared by the load scripts: run CLIENTS client loops, count after WARMUP
// seconds for SECONDS seconds, then print the result and exit. The loops read `measuring.counting`
// (count this one) and `measuring.stopped` (end the loop).
export const measuring = { counting: false, stopped: false };

export function runWindow({ clients, warmup, seconds, client, result }) {
  for (let i = 0; i < Number(clients); i++) {
    client().catch((err) => { if (!measuring.stopped) { console.error(String(err)); process.exit(1); } });
  }
  setTimeout(() => {
    measuring.counting = true;
    console.log(JSON.stringify({ event: "counting" }));
    setTimeout(() => {
      measuring.counting = false;
      measuring.stopped = true;
      console.log(JSON.stringify(result()));
      process.exit(0);
    }, Number(seconds) * 1000);
  }, Number(warmup) * 1000);
}
