// Drives a Node server SDK (from its npm package in tests/.cache) as an application would:
// `new Analytics(...args)`, the calls, then `await analytics[close]()`; then reports what the SDK said.
//
// Input (JSON on stdin): {"sdk": "segment-node" | "rudder-node", "package_dir": "...", "export_name": "Analytics"
//   or null (the package itself is the class), "close": "closeAndFlush" | "flush", "result_path": "...",
//   "clients": [{"args": [...constructor arguments...], "calls": [["track", {...message...}], ...]}]}
// The clients run one after the other. Output (JSON written to result_path): per client, each call's
// message id and the error its callback got, the errors the SDK reported through its own error hook, and
// the HTTP statuses it reported.
"use strict";

const fs = require("fs");

function describe(error) {
  if (error === undefined || error === null) return null;
  const status = error.response ? error.response.status : undefined;
  return { message: String(error.message || error), status: status === undefined ? null : status };
}

// How each SDK reports errors: hooks added to the client (never settings that change where it sends).
const HOOKS = {
  "segment-node": {
    construct(Analytics, args, report) {
      const analytics = new Analytics(...args);
      // "error" for a failed delivery, "http_response" for every upload's answer.
      analytics.on("error", (error) => report.errors.push({ code: error.code, ...describe(error.reason) }));
      analytics.on("http_response", (response) => report.statuses.push(response.status));
      return analytics;
    },
  },
  "rudder-node": {
    construct(Analytics, args, report) {
      const [writeKey, options] = args;
      // `errorHandler` gets a failed upload's axios error (with the response's status).
      const errorHandler = (error) => {
        const seen = describe(error);
        report.errors.push({ code: "upload_failed", ...seen });
        if (seen.status !== null) report.statuses.push(seen.status);
      };
      return new Analytics(writeKey, { ...options, errorHandler });
    },
  },
};

// Both SDKs take one message object per call and an optional node-style callback `(error) => ...`.
function send(analytics, method, message) {
  return new Promise((resolve) => analytics[method](message, (error) => resolve(describe(error))));
}

async function run(input) {
  const hooks = HOOKS[input.sdk];
  if (!hooks) throw new Error(`unknown sdk ${input.sdk}`);
  const mod = require(input.package_dir);
  const Analytics = input.export_name ? mod[input.export_name] : mod;
  const results = [];
  for (const spec of input.clients) {
    const report = { calls: [], errors: [], statuses: [] };
    const analytics = hooks.construct(Analytics, spec.args, report);
    const sent = spec.calls.map(([method, message]) => send(analytics, method, message));
    await analytics[input.close]();
    const errors = await Promise.all(sent);
    spec.calls.forEach(([method, message], n) => {
      report.calls.push({ method, messageId: message.messageId || null, error: errors[n] });
    });
    results.push(report);
  }
  return { clients: results };
}

let raw = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { raw += chunk; });
process.stdin.on("end", () => {
  const input = JSON.parse(raw);
  run(input).then(
    (result) => {
      fs.writeFileSync(input.result_path, JSON.stringify(result));
      process.exit(0);
    },
    (error) => {
      process.stderr.write(`driver failed: ${error && error.stack ? error.stack : error}\n`);
      process.exit(1);
    },
  );
});
