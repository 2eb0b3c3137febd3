// Progressive enhancement for the upload form: tus 1.0 through the API in 8 MiB pieces,
// with a progress bar; without JavaScript the form posts the file as one multipart body.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.fetch || !window.XMLHttpRequest) { return; }
  var CHUNK = 8 * 1024 * 1024;
  var csrf = form.getAttribute("data-csrf");
  var box = document.getElementById("upload-progress");
  var bar = document.getElementById("progress-bar");
  var text = document.getElementById("progress-text");

  function show(sent, total) {
    var pct = total ? Math.floor((sent * 100) / total) : 100;
    bar.value = pct;
    bar.textContent = pct + "%";
    text.textContent = pct + "% (" + sent.toLocaleString() + " of " + total.toLocaleString() + " bytes)";
  }

  function problem(xhr) {
    try { var body = JSON.parse(xhr.responseText); return body.detail + " (" + body.code + ")"; }
    catch (e) { return "The server refused the upload (HTTP " + xhr.status + ")."; }
  }

  function send(method, url, headers, body, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.setRequestHeader("Tus-Resumable", "1.0.0");
      Object.keys(headers).forEach(function (k) { xhr.setRequestHeader(k, headers[k]); });
      if (onProgress) { xhr.upload.onprogress = function (e) { onProgress(e.loaded); }; }
      xhr.onload = function () {
        if (xhr.status < 400) { resolve(xhr); return; }
        var refused = new Error(problem(xhr));
        refused.refused = true;  // the server said no: resuming cannot help
        reject(refused);
      };
      xhr.onerror = function () { reject(new Error("The connection dropped; try again to resume.")); };
      xhr.send(body);
    });
  }

  function b64(s) { return btoa(unescape(encodeURIComponent(s))); }

  form.addEventListener("submit", function (event) {
    var file = document.getElementById("file").files[0];
    if (!file) { return; }
    event.preventDefault();
    box.hidden = false;
    document.getElementById("progress-name").textContent = file.name;
    var key = "fairtrain-tus:" + file.name + ":" + file.size + ":" + file.lastModified;
    var start = localStorage.getItem(key)
      ? send("HEAD", localStorage.getItem(key), {}, null).then(function (xhr) {
          return { url: localStorage.getItem(key), offset: parseInt(xhr.getResponseHeader("Upload-Offset"), 10) };
        }).catch(function () { localStorage.removeItem(key); return null; })
      : Promise.resolve(null);
    start.then(function (resumed) {
      if (resumed) { return resumed; }
      return send("POST", "/api/v1/uploads/tus",
        { "Upload-Length": String(file.size), "Upload-Metadata": "filename " + b64(file.name) }, null)
        .then(function (xhr) {
          var url = xhr.getResponseHeader("Location");
          localStorage.setItem(key, url);
          return { url: url, offset: 0 };
        });
    }).then(function loop(state) {
      show(state.offset, file.size);
      var end = Math.min(state.offset + CHUNK, file.size);
      return send("PATCH", state.url,
        { "Content-Type": "application/offset+octet-stream", "Upload-Offset": String(state.offset) },
        file.slice(state.offset, end),
        function (loaded) { show(state.offset + loaded, file.size); })
        .then(function (xhr) {
          var asset = xhr.getResponseHeader("Fairtrain-Asset");
          var offset = parseInt(xhr.getResponseHeader("Upload-Offset"), 10);
          if (asset) { localStorage.removeItem(key); window.location.assign("/assets/" + asset); return null; }
          return loop({ url: state.url, offset: offset });
        });
    }).catch(function (error) {
      if (error.refused) { localStorage.removeItem(key); }
      text.textContent = error.message;
      text.setAttribute("role", "alert");
    });
  });
})();
