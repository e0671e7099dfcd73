# The user guide, "Plugin Extension" > "Extending": plugin animals.
from gofer.decorators import *


class Dog:
   @remote
   def bark(self):
       pass
