import { describe, expect, it } from 'vitest';
import { md, mdUntrusted } from '../../reports/render-markdown.js';
import { escapeHtml } from '../../reports/escape.js';
import { HOSTILE } from './fixture.js';

describe('Markdown escaping', () => {
  it('leaves apostrophes and quotes as they are: no HTML entity shows literally', () => {
    expect(md("Decisions weren't stored")).toBe("Decisions weren't stored");
    expect(md('the "main" feed')).toBe('the "main" feed');
    expect(md("weren't")).not.toMatch(/&\\?#39;|&#x27;|&quot;/);
  });

  it('still neutralises Markdown punctuation, raw HTML and entities', () => {
    expect(md('# *bold* _em_ [link](x) `code` | ~s~ !')).toBe('\\# \\*bold\\* \\_em\\_ \\[link\\]\\(x\\) \\`code\\` \\| \\~s\\~ \\!');
    expect(md('<b>x</b> & y')).toBe('&lt;b&gt;x&lt;/b&gt; &amp; y');
    // An entity in the input is shown as typed, not decoded; the entities md inserts stay intact.
    expect(md('&#39; &lt;')).toBe('&amp;\\#39; &amp;lt;');
    expect(md('a\\b')).toBe('a\\\\b');
    expect(md('line1\nline2\r\nline3')).toBe('line1 line2 line3');
    expect(md(null)).toBe('');
  });

  it('shows links in text from outside defanged, so chat tools and mail clients do not make them clickable', () => {
    expect(mdUntrusted('Reset your password at https://login-microsoft.evil.test/reset.html or www.evil.test')).toBe(
      'Reset your password at hxxps://login-microsoft.evil\\[.\\]test/reset.html or www.evil\\[.\\]test',
    );
    expect(mdUntrusted('HTTP://x.test and http://y.test:8080/a')).toBe('HxxP://x\\[.\\]test and hxxp://y\\[.\\]test:8080/a');
    // Bare domains are linked by chat tools too: the last dot of the host.
    expect(mdUntrusted('login-microsoft-support.com')).toBe('login-microsoft-support\\[.\\]com');
    expect(mdUntrusted('(see evil.test.)')).toBe('\\(see evil\\[.\\]test.\\)');
    // What is not a domain stays as it is.
    expect(mdUntrusted('Weekly offers, version 1.2.3, e.g. this')).toBe('Weekly offers, version 1.2.3, e.g. this');
    // Our own text keeps its links (the delisting form's address).
    expect(md('https://olcsupport.office.com/')).toBe('https://olcsupport.office.com/');
  });

  it('keeps every hostile value inert', () => {
    for (const value of Object.values(HOSTILE)) {
      const out = md(value);
      expect(out).not.toMatch(/</);
      expect(out).not.toContain(value);
    }
    expect(md(HOSTILE.subject)).toBe('&lt;img src=x onerror="window.\\_\\_pwned=\'img\'"&gt;');
  });

  it('does not change the HTML escaping, which still encodes quotes for attributes', () => {
    expect(escapeHtml(`it's "x" <b>`)).toBe('it&#39;s &quot;x&quot; &lt;b&gt;');
  });
});
