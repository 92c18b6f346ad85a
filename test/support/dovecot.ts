/** The private Dovecot the IMAP tests start; it lives under bench/ because `npm run bench -- imap`
 * starts the same one and the build leaves test/ out. */
export { dovecotAvailable, dovecotSkipReason, startDovecot, type DovecotServer } from '../../bench/local-dovecot.js';
