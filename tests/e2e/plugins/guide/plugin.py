# The user guide, "Python Examples" > "Define Agent-side": /usr/share/gofer/plugins/plugin.py.
# Two lines differ from the guide, which cannot run as written there:
# "from gofer.rmi.model.FORK" (a syntax error) and "cfg.dog.bark_noise"
# (cfg is not defined; the plugin's own cfg is meant).
from gofer.decorators import remote
from gofer.rmi.model import FORK
from gofer.agent.plugin import Plugin

# (optional) access to the plugin descriptor
# which you can use to define custom sections/properties

plugin = Plugin.find(__name__)

class Dog:

   @remote
   def bark(self, words):
       woof = plugin.cfg.dog.bark_noise
       print('%s %s' % (woof, words))
       return 'Yes master.  I will bark because that is what dogs do.'

   @remote(model=FORK)
   def wag(self, n):
       for i in range(0, n):
           print('wag')
       return 'Yes master.  I will wag my tail because that is what dogs do.'
