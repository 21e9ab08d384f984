// Drives a Node server SDK (from its npm package in tests/.cache) as an application would: construct the
// client with the settings given, make the calls given, flush and close it, then report what the SDK said.
//
// Input (JSON on stdin): {"sdk": "segment-node" | "rudder-node", "package_dir": "...", "result_path": "...",
//   "clients": [{"args": [...constructor arguments...], "calls": [["track", {...message...}], ...]}]}
// The clients run one after the other. Output (JSON written to result_path): per client, each call's
// message id and the error its callback got, and the errors the SDK reported through its own error hook.
"use strict";

const fs = require("fs");

function describe(error) {
  if (error === undefined || error === null) return null;
  const status = error.response ? error.response.status : undefined;
  return { message: String(error.message || error), status: status === undefined ? null : status };
}

// Each adapter: create(module, args, report) -> client; send(client, method, message) -> Promise of the
// callback's error; close(client) -> Promise once everything queued was sent (or given up).
const ADAPTERS = {
  "segment-node": {
    create(mod, args, report) {
      const client = new mod.Analytics(...args);
      // The SDK's own hooks: "error" for a failed delivery, "http_response" for every upload's answer.
      client.on("error", (error) => report.errors.push({ code: error.code, ...describe(error.reason) }));
      client.on("http_response", (response) => report.statuses.push(response.status));
      return client;
    },
    send(client, method, message) {
      return new Promise((resolve) => client[method](message, (error) => resolve(describe(error))));
    },
    close(client) {
      return client.closeAndFlush();
    },
  },
  "rudder-node": {
    create(Analytics, args, report) {
      const [writeKey, options] = args;
      // `errorHandler` is the SDK's hook for a failed upload (the axios error, with the response's status).
      const errorHandler = (error) => {
        const seen = describe(error);
        report.errors.push({ code: "upload_failed", ...seen });
        if (seen.status !== null) report.statuses.push(seen.status);
      };
      return new Analytics(writeKey, { ...options, errorHandler });
    },
    send(client, method, message) {
      return new Promise((resolve) => client[method](message, (error) => resolve(describe(error))));
    },
    close(client) {
      return client.flush();
    },
  },
};

async function run(input) {
  const adapter = ADAPTERS[input.sdk];
  if (!adapter) throw new Error(`unknown sdk ${input.sdk}`);
  const mod = require(input.package_dir);
  const results = [];
  for (const spec of input.clients) {
    const report = { calls: [], errors: [], statuses: [] };
    const client = adapter.create(mod, spec.args, report);
    const sent = spec.calls.map(([method, message]) => adapter.send(client, method, message));
    await adapter.close(client);
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
