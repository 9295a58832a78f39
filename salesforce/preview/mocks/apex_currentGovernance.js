export { currentGovernance as default } from './apex.js';
