// Test helpers around the real mParticle web SDK; every call returns a JSON-serialisable Promise result.
(function () {
  "use strict";
  var TIMEOUT_MS = 15000;

  function record(call, result) {
    var user = result && typeof result.getUser === "function" ? result.getUser() : null;
    var current = mParticle.Identity.getCurrentUser();
    var body = null;
    try { body = JSON.parse(JSON.stringify(result && result.body)); } catch (e) { body = String(e); }
    var entry = {
      call: call,
      httpCode: result ? result.httpCode : null,
      body: body,
      callbackMpid: user ? user.getMPID() : null,
      currentMpid: current ? current.getMPID() : null,
      loggedIn: current ? current.isLoggedIn() : null,
    };
    window.kaonHarness.results.push(entry);
    return entry;
  }

  function withTimeout(call, start) {
    return new Promise(function (resolve, reject) {
      var timer = setTimeout(function () {
        reject(new Error(call + ": no identity callback within " + TIMEOUT_MS + " ms"));
      }, TIMEOUT_MS);
      start(function (result) { clearTimeout(timer); resolve(record(call, result)); });
    });
  }

  window.kaonHarness = {
    results: [],
    // mParticle.init with `options`; resolves with the identify callback's view of the user.
    init: function (apiKey, options, identities) {
      return withTimeout("identify", function (done) {
        var config = Object.assign({}, options, {
          identifyRequest: { userIdentities: identities || {} },
          identityCallback: done,
        });
        mParticle.init(apiKey, config);
      });
    },
    // mParticle.Identity.login / logout / identify / modify with userIdentities.
    identity: function (method, identities) {
      return withTimeout(method, function (done) {
        mParticle.Identity[method]({ userIdentities: identities || {} }, done);
      });
    },
    currentMpid: function () {
      var user = mParticle.Identity.getCurrentUser();
      return user ? user.getMPID() : null;
    },
  };
})();
