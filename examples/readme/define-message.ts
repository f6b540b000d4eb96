import { defineMessage } from 'tsage';

// Registered at once: a packetType outside 101..255 or a bad type code throws here.
const Move = defineMessage('Move', { x: 'f', y: 'f', who: 'p' }, { packetType: 120 });
const move = new Move({ x: 1, y: 2, who: 'bob' });
console.log(move.x + move.getProperty('y'), move.who); // 3 bob: numbers and a string, typed
