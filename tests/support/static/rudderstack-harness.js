// Test helpers around RudderStack's JS SDKs: v3 (`@rudderstack/analytics-js/bundled` UMD, global
// `rudderanalytics.RudderAnalytics`) and v2 (`rudder-sdk-js` UMD, global `rudderanalytics` with the methods).
(function () {
  "use strict";
  var TIMEOUT_MS = 15000;
  window.kaonSdk = {
    // load(writeKey, dataPlaneUrl, options); resolves when the SDK says it is ready.
    load: function (writeKey, dataPlaneUrl, options) {
      var module = window.rudderanalytics;
      var analytics = typeof module.RudderAnalytics === "function" ? new module.RudderAnalytics() : module;
      window.kaonAnalytics = analytics;
      return new Promise(function (resolve, reject) {
        var timer = setTimeout(function () { reject(new Error("SDK not ready within " + TIMEOUT_MS + " ms")); },
                               TIMEOUT_MS);
        analytics.ready(function () { clearTimeout(timer); resolve(true); });
        analytics.load(writeKey, dataPlaneUrl, options);
      });
    },
    // analytics[method](...args); the SDK queues the call and delivers it on its own schedule.
    call: function (method, args) {
      window.kaonAnalytics[method].apply(window.kaonAnalytics, args);
      return true;
    },
  };
})();
