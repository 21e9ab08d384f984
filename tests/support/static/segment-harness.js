// Test helpers around Segment's analytics-next (UMD build, global `AnalyticsNext`); results are JSON-serialisable.
(function () {
  "use strict";
  window.kaonSdk = {
    // AnalyticsBrowser.load(settings, options); resolves once the SDK is initialised.
    load: function (settings, options) {
      window.kaonAnalytics = AnalyticsNext.AnalyticsBrowser.load(settings, options);
      return window.kaonAnalytics.then(function () { return true; });
    },
    // analytics[method](...args); resolves with the call's messageId.
    call: function (method, args) {
      return window.kaonAnalytics[method].apply(window.kaonAnalytics, args).then(function (ctx) {
        return ctx.event.messageId;
      });
    },
  };
})();
