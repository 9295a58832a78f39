// Accessibility checks (`expect(element).toBeAccessible()`) with axe rules, from @sa11y/jest.
const { setup } = require('@sa11y/jest');

setup();
