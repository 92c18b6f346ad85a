/** The feed name the SNDS REST API's data is stored under (one API account per installation). Its own
 * module so that transform/ can name it without importing the API client. */
export const API_FEED = 'api';
