// Entry point: a two-page app routed by the URL hash (#/ and #/watch/{id}); /watch/{id} paths
// (shareable links served by the same page) are turned into their hash form.
import './styles.css';
import { renderHome } from './home.js';
import { renderWatch } from './watch.js';

const main = document.getElementById('main');
let teardown = null;

function route() {
  const match = /^#\/watch\/([^/?#]+)/.exec(location.hash);
  teardown?.();
  main.removeAttribute('data-status');
  main.removeAttribute('data-playback');
  main.removeAttribute('data-loaded');
  if (match) {
    main.dataset.page = 'watch';
    teardown = renderWatch(main, decodeURIComponent(match[1]));
  } else {
    main.dataset.page = 'home';
    teardown = renderHome(main);
  }
}

const pathMatch = /^\/watch\/([^/]+)\/?$/.exec(location.pathname);
if (pathMatch) history.replaceState(null, '', `/#/watch/${pathMatch[1]}`);

window.addEventListener('hashchange', () => {
  route();
  // Move focus to the new page so keyboard and screen-reader users start at its top.
  main.focus({ preventScroll: false });
});
route();
