export { check as default } from './apex.js';
