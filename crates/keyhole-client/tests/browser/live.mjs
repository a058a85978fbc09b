// The web viewer is live: with the page open and notifications allowed, a doorbell press on a
// running camera appears on the timeline without a reload, and raises a browser notification
// whose icon is the press's decrypted thumbnail.
//
//   node live.mjs <link printed by keyhole ui> <output folder>
//
// Environment: CAMERA_CONTROL (the running camera's control address, where the doorbell is
// pressed), CHROMIUM (the browser; default Debian's).
import { join } from 'node:path';
import { check, launch } from './chromium.mjs';

const [link, out] = process.argv.slice(2);
const origin = new URL(link).origin;

const { context, close } = await launch();
try {
  // The owner allowed notifications for the viewer; each one the page raises is noted.
  await context.grantPermissions(['notifications'], { origin });
  await context.addInitScript(() => {
    const Shown = window.Notification;
    window.noted = [];
    window.Notification = class extends Shown {
      constructor(title, options) {
        window.noted.push({ title, ...options });
        super(title, options);
      }
    };
  });
  const page = context.pages()[0] || await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));

  await page.goto(link);
  await page.waitForSelector('ul.events', { timeout: 120000 });
  check(await page.locator('#notify').isHidden(), 'allowed already: no button asks for it');
  const presses = () => page.$$eval('li.event[data-kind="doorbell"]', (li) => li.map((x) => x.dataset.event));
  const before = await presses();
  await page.evaluate(() => { window.sameDocument = true; });

  const pressed = Date.now();
  const rang = await fetch(`${process.env.CAMERA_CONTROL}/doorbell`, { method: 'POST' });
  check(rang.ok, 'the doorbell is pressed');
  await page.waitForFunction((n) => document.querySelectorAll('li.event[data-kind="doorbell"]').length > n,
    before.length, { timeout: 60000 });
  console.log(`the press showed after ${Date.now() - pressed} ms`);
  check(await page.evaluate(() => window.sameDocument === true), 'the press appeared without a reload');
  const added = (await presses()).filter((e) => !before.includes(e));
  check(added.length === 1, `one press added (${added})`);
  const [event] = added;
  await page.waitForFunction(() => window.noted.length > 0, null, { timeout: 10000 });
  const noted = await page.evaluate(() => window.noted);
  check(noted.length === 1 && /doorbell/i.test(noted[0].title), `one notification of the press (${JSON.stringify(noted)})`);
  check(noted[0].icon === `/api/thumbnails/${event}`, 'its icon is the press\'s thumbnail');
  const icon = await page.evaluate(async (src) => {
    const img = new Image();
    img.src = src;
    await img.decode();
    return img.naturalWidth;
  }, noted[0].icon);
  check(icon > 0, 'the thumbnail opens as a picture');
  await page.screenshot({ path: join(out, 'live-press.png') });
  check(errors.length === 0, `no page errors (${errors.join('; ')})`);
} finally {
  await close();
}
