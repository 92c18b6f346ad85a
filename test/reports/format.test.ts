import { describe, expect, it } from 'vitest';
import { routesShown } from '../../reports/format.js';

describe('routesShown: the routes a decision shows in the report headers', () => {
  it("follows its drafts' order (the forwarded 5.7.511 NDR before the portal), not issue 8's route column", () => {
    expect(routesShown({ route: 'office365_portal', playbooks: [{ route: 'delist_email' }, { route: 'office365_portal' }] })).toBe('delist_email, office365_portal');
  });

  it("is the decision's route without playbooks, and empty without either", () => {
    expect(routesShown({ route: 'outlook_form' })).toBe('outlook_form');
    expect(routesShown({ route: 'outlook_form', playbooks: [] })).toBe('outlook_form');
    expect(routesShown({ route: null })).toBe('');
  });
});
