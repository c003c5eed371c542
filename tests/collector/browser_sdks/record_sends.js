// Added to every test page before its scripts: records in localStorage (kept across the page's
// origin) each send to another origin by sendBeacon or fetch, and each pagehide, so the test can
// see what the SDK sent while a page was being left (requests of an unloading page are not visible
// to the browser driver).
(() => {
  const record = (entry) => {
    const log = JSON.parse(localStorage.getItem('sends') || '[]');
    log.push({ page: location.search, ...entry });
    localStorage.setItem('sends', JSON.stringify(log));
  };
  const beacon = navigator.sendBeacon.bind(navigator);
  navigator.sendBeacon = (url, data) => { record({ via: 'sendBeacon', url: String(url) }); return beacon(url, data); };
  const fetch = window.fetch.bind(window);
  window.fetch = (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (!url.startsWith(location.origin)) record({ via: 'fetch', url, keepalive: !!(init && init.keepalive) });
    return fetch(input, init);
  };
  addEventListener('pagehide', () => record({ via: 'pagehide' }));
})();
